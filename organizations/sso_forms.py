"""The form of an organization's single sign-on email-domain rules."""

from __future__ import annotations

from django import forms

from organizations.forms import NoColon
from organizations.models import Role
from organizations.sso import DOMAIN_ROLES, normalize_domain


class SsoDomainForm(NoColon, forms.Form):
    domain = forms.CharField(
        label="Email domain",
        max_length=253,
        help_text="For example example.com: the whole domain after the @, subdomains not included.",
    )
    role = forms.ChoiceField(
        choices=[(role.value, role.label) for role in Role if role in DOMAIN_ROLES],
        initial=Role.VIEWER,
        help_text="Owners are not given by a domain: an owner makes someone owner on the members page.",
    )

    def clean_domain(self) -> str:
        domain = normalize_domain(self.cleaned_data["domain"])
        if domain is None:
            raise forms.ValidationError("Enter a domain name such as example.com.")
        return domain
