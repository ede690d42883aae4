from django.urls import path

from organizations import sso_views, views

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
    path("invite/<str:token>/", views.invite_accept, name="invite_accept"),
    path("orgs/", views.org_list, name="org_list"),
    path(org + "members/", views.members, name="members"),
    path(org + "members/invite/", views.member_invite, name="member_invite"),
    path(org + "members/invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path(org + "members/<int:member_id>/role/", views.member_role, name="member_role"),
    path(org + "members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path(org + "settings/sso/", sso_views.sso_domains, name="sso_domains"),
    path(org + "settings/sso/<int:domain_id>/remove/", sso_views.sso_domain_remove, name="sso_domain_remove"),
    path(org + "audit/", views.audit, name="audit"),
    path(org + "apps/new/", views.app_create, name="app_create"),
]
