from django.urls import path

from organizations import views

app_name = "organizations"

org = "orgs/<str:org_id>/"

# The app list, credentials and the settings pages show event figures, so they are
# dashboard's (dashboard/urls.py), under the same /orgs/… paths.
urlpatterns = [
    path("setup/", views.setup, name="setup"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/profile/", views.profile, name="profile"),
    path("invite/<str:token>/", views.invite_accept, name="invite_accept"),
    path("orgs/", views.org_list, name="org_list"),
    path(org + "members/", views.members, name="members"),
    path(org + "members/invite/", views.member_invite, name="member_invite"),
    path(org + "members/invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path(org + "members/<int:member_id>/role/", views.member_role, name="member_role"),
    path(org + "members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path(org + "audit/", views.audit, name="audit"),
    path(org + "apps/new/", views.app_create, name="app_create"),
]
