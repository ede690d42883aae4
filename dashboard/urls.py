from django.urls import path, register_converter

from dashboard import (
    activity_views,
    funnel_views,
    health_views,
    lifecycle_views,
    manage_views,
    platform_views,
    property_views,
    release_views,
    share_views,
    views,
)

register_converter(health_views.CommandConverter, "command")

app_name = "dashboard"

org = "orgs/<str:org_id>/"
app = org + "apps/<str:app_id>/"

urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/", views.background_jobs, name="background_jobs"),
    path(org, views.org_overview, name="org_overview"),
    path(app, views.app_overview, name="app_overview"),
    path(app + "checklist/dismiss/", views.checklist_dismiss, name="checklist_dismiss"),
    path(app + "events/", views.app_events, name="app_events"),
    path(app + "live/", views.app_live, name="app_live"),
    path(app + "releases/", release_views.releases_page, name="releases"),
    path(app + "events/<uuid:event_id>/", views.event_detail, name="event_detail"),
    path(app + "platforms/", platform_views.platforms_page, name="platforms"),
    path(app + "export/", lifecycle_views.export_events, name="export_events"),
    path(app + "health/", health_views.release_health, name="release_health"),
    # Any command name, slashes included (health_views.CommandConverter).
    path(app + "commands/<command:command>/", health_views.command_detail, name="command_detail"),
    path(app + "retention/", activity_views.retention, name="retention"),
    path(app + "funnels/", funnel_views.funnel_list, name="funnels"),
    path(app + "funnels/new/", funnel_views.funnel_new, name="funnel_new"),
    path(app + "funnels/<int:funnel_id>/", funnel_views.funnel_detail, name="funnel_detail"),
    path(app + "funnels/<int:funnel_id>/edit/", funnel_views.funnel_edit, name="funnel_edit"),
    path(app + "funnels/<int:funnel_id>/delete/", funnel_views.funnel_delete, name="funnel_delete"),
    path(app + "properties/", property_views.properties_page, name="properties"),
    # Erasure spans the organization's events, so the page lives here: organizations/ imports no other app.
    path(org + "erase/", lifecycle_views.erase_user, name="erase_user"),
    # Managing apps and the organization, on pages that show event figures (dashboard/manage_views.py).
    path(org + "settings/", manage_views.org_settings, name="org_settings"),
    path(org + "settings/retention/", manage_views.org_retention, name="org_retention"),
    path(org + "settings/state/", manage_views.org_state, name="org_state"),
    path(org + "apps/", manage_views.app_list, name="app_list"),
    path(app + "credentials/", manage_views.app_credentials, name="app_credentials"),
    path(app + "credentials/reveal/", manage_views.credential_reveal, name="credential_reveal"),
    path(app + "credentials/rotate/", manage_views.credentials_rotate, name="credentials_rotate"),
    path(app + "credentials/revoke/", manage_views.credential_revoke, name="credential_revoke"),
    path(app + "settings/", manage_views.app_settings, name="app_settings"),
    path(app + "settings/state/", manage_views.app_state, name="app_state"),
    path(app + "settings/retention/", manage_views.app_retention, name="app_retention"),
    path(app + "settings/delete/", manage_views.app_delete, name="app_delete"),
    # Share links (docs/sharing.md): the app's list for admins, and the public pages behind a token.
    path(app + "share/", share_views.share_links, name="share_links"),
    path(app + "share/revoke/", share_views.share_link_revoke, name="share_link_revoke"),
    path("s/<str:token>/", share_views.shared_page, name="shared_page"),
    path("s/<str:token>/badge/<str:kind>.svg", share_views.shared_badge, name="shared_badge"),
]
