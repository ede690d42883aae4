from django.urls import path

from dashboard import lifecycle_views, manage_views, property_views, views

app_name = "dashboard"

org = "orgs/<str:org_id>/"
app = org + "apps/<str:app_id>/"

urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/", views.background_jobs, name="background_jobs"),
    path(org, views.org_overview, name="org_overview"),
    path(app, views.app_overview, name="app_overview"),
    path(app + "events/", views.app_events, name="app_events"),
    path(app + "events/<uuid:event_id>/", views.event_detail, name="event_detail"),
    path(app + "export/", lifecycle_views.export_events, name="export_events"),
    path(app + "properties/", property_views.properties_page, name="properties"),
    # Erasure spans the organization's events, so the page lives here: organizations/ imports no other app.
    path(org + "erase/", lifecycle_views.erase_user, name="erase_user"),
    # Managing apps and the organization, on pages that show event figures (dashboard/manage_views.py).
    path(org + "settings/", manage_views.org_settings, name="org_settings"),
    path(org + "settings/retention/", manage_views.org_retention, name="org_retention"),
    path(org + "apps/", manage_views.app_list, name="app_list"),
    path(app + "credentials/", manage_views.app_credentials, name="app_credentials"),
    path(app + "credentials/reveal/", manage_views.credential_reveal, name="credential_reveal"),
    path(app + "credentials/rotate/", manage_views.credentials_rotate, name="credentials_rotate"),
    path(app + "credentials/revoke/", manage_views.credential_revoke, name="credential_revoke"),
    path(app + "settings/", manage_views.app_settings, name="app_settings"),
    path(app + "settings/state/", manage_views.app_state, name="app_state"),
    path(app + "settings/retention/", manage_views.app_retention, name="app_retention"),
    path(app + "settings/delete/", manage_views.app_delete, name="app_delete"),
]
