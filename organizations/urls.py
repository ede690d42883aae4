from django.urls import path

from organizations import views

app_name = "organizations"

org = "orgs/<str:org_id>/"
app = org + "apps/<str:app_id>/"

urlpatterns = [
    path("setup/", views.setup, name="setup"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("invite/<str:token>/", views.invite_accept, name="invite_accept"),
    path("orgs/", views.org_list, name="org_list"),
    path(org + "settings/", views.org_settings, name="org_settings"),
    path(org + "settings/retention/", views.org_retention, name="org_retention"),
    path(org + "members/", views.members, name="members"),
    path(org + "members/invite/", views.member_invite, name="member_invite"),
    path(org + "members/invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path(org + "members/<int:member_id>/role/", views.member_role, name="member_role"),
    path(org + "members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path(org + "audit/", views.audit, name="audit"),
    path(org + "apps/", views.app_list, name="app_list"),
    path(org + "apps/new/", views.app_create, name="app_create"),
    path(app + "credentials/", views.app_credentials, name="app_credentials"),
    path(app + "credentials/reveal/", views.credential_reveal, name="credential_reveal"),
    path(app + "credentials/rotate/", views.credentials_rotate, name="credentials_rotate"),
    path(app + "credentials/revoke/", views.credential_revoke, name="credential_revoke"),
    path(app + "settings/", views.app_settings, name="app_settings"),
    path(app + "settings/state/", views.app_state, name="app_state"),
    path(app + "settings/retention/", views.app_retention, name="app_retention"),
    path(app + "settings/delete/", views.app_delete, name="app_delete"),
]
