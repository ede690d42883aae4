from django.urls import path

from organizations import account_views, sso_views, views

app_name = "organizations"

org = "orgs/<str:org_id>/"

# The app list, credentials and the settings pages show event figures, so they are
# dashboard's (dashboard/urls.py), under the same /orgs/… paths.
urlpatterns = [
    path("setup/", views.setup, name="setup"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", views.PasswordChangeView.as_view(), name="password_change"),
    # Single sign-on (organizations/oidc.py): 404 unless OIDC_ISSUER and the client are set.
    path("accounts/oidc/login/", sso_views.OidcLoginView.as_view(), name="oidc_login"),
    path("accounts/oidc/callback/", sso_views.OidcCallbackView.as_view(), name="oidc_callback"),
    path("accounts/two-factor/", account_views.two_factor, name="two_factor"),
    path("accounts/two-factor/start/", account_views.two_factor_start, name="two_factor_start"),
    path("accounts/two-factor/qr.svg", account_views.two_factor_qr, name="two_factor_qr"),
    path("accounts/two-factor/confirm/", account_views.two_factor_confirm, name="two_factor_confirm"),
    path("accounts/two-factor/recovery-codes/", account_views.two_factor_recovery_codes, name="two_factor_recovery_codes"),
    path("accounts/two-factor/disable/", account_views.two_factor_disable, name="two_factor_disable"),
    path("accounts/two-factor/verify/", account_views.two_factor_verify, name="two_factor_verify"),
    path("accounts/sessions/", account_views.session_list, name="sessions"),
    path("accounts/sessions/end-others/", account_views.session_end_others, name="session_end_others"),
    path("accounts/sessions/<int:session_id>/end/", account_views.session_end, name="session_end"),
    path("accounts/password/forgot/", account_views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password/forgot/sent/", account_views.PasswordResetSentView.as_view(), name="password_reset_sent"),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        account_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("accounts/profile/", views.profile, name="profile"),
    path("invite/<str:token>/", views.invite_accept, name="invite_accept"),
    path("orgs/", views.org_list, name="org_list"),
    path(org + "members/", views.members, name="members"),
    path(org + "members/invite/", views.member_invite, name="member_invite"),
    path(org + "members/invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path(org + "members/<int:member_id>/role/", views.member_role, name="member_role"),
    path(org + "members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path(org + "settings/sso/", sso_views.sso_domains, name="sso_domains"),
    path(org + "settings/sso/<int:domain_id>/remove/", sso_views.sso_domain_remove, name="sso_domain_remove"),
    path(org + "members/<int:member_id>/unlock/", views.member_unlock, name="member_unlock"),
    path(org + "members/<int:member_id>/reset-link/", views.member_reset_link, name="member_reset_link"),
    path(org + "members/two-factor/", views.require_two_factor, name="require_two_factor"),
    path(org + "audit/", views.audit, name="audit"),
    path(org + "apps/new/", views.app_create, name="app_create"),
]
