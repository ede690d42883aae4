from django.urls import path, re_path

from api import admin_actions, docs, events, key_views, views
from api.errors import json_not_found

app_name = "api"

v1 = "api/v1/"
org = v1 + "orgs/<str:org_id>/"
app = org + "apps/<str:app_id>/"

urlpatterns = [
    path(v1 + "schema/", docs.SchemaView.as_view(), name="schema"),
    path(v1 + "docs/", docs.SwaggerView.as_view(url_name="api:schema"), name="docs"),
    path(v1 + "orgs/", views.OrganizationList.as_view(), name="organizations"),
    path(org, views.OrganizationDetail.as_view(), name="organization"),
    path(org + "summary/", views.ORG_SUMMARY.as_view(), name="org_summary"),
    path(org + "timeseries/", views.ORG_TIMESERIES.as_view(), name="org_timeseries"),
    path(org + "breakdowns/", views.ORG_BREAKDOWNS.as_view(), name="org_breakdowns"),
    path(org + "commands/", views.ORG_COMMANDS.as_view(), name="org_commands"),
    path(org + "apps/", views.AppList.as_view(), name="apps"),
    path(app, views.AppDetail.as_view(), name="app"),
    path(app + "summary/", views.APP_SUMMARY.as_view(), name="app_summary"),
    path(app + "timeseries/", views.APP_TIMESERIES.as_view(), name="app_timeseries"),
    path(app + "breakdowns/", views.APP_BREAKDOWNS.as_view(), name="app_breakdowns"),
    path(app + "commands/", views.APP_COMMANDS.as_view(), name="app_commands"),
    path(app + "releases/", views.Releases.as_view(), name="releases"),
    path(app + "health/", views.ReleaseHealth.as_view(), name="release_health"),
    path(app + "health/command/", views.CommandHealth.as_view(), name="command_health"),
    path(app + "retention/", views.Retention.as_view(), name="retention"),
    path(app + "platforms/", views.Platforms.as_view(), name="platforms"),
    path(app + "properties/", views.Properties.as_view(), name="properties"),
    path(app + "funnels/", views.FunnelList.as_view(), name="funnels"),
    path(app + "funnels/<int:funnel_id>/", views.FunnelDetail.as_view(), name="funnel"),
    path(app + "events/", events.EventList.as_view(), name="events"),
    path(app + "events/<uuid:event_id>/", events.EventDetail.as_view(), name="event"),
    path(app + "export/", events.Export.as_view(), name="export"),
    path(app + "credentials/", admin_actions.Credentials.as_view(), name="credentials"),
    path(app + "credentials/rotate/", admin_actions.RotateCredentials.as_view(), name="credentials_rotate"),
    path(app + "credentials/<int:credential_id>/revoke/", admin_actions.RevokeCredential.as_view(), name="credential_revoke"),
    path(app + "retention-policy/", admin_actions.RetentionPolicy.as_view(), name="retention_policy"),
    # Any other path under the API: its JSON 404, not the dashboard's page.
    re_path(r"^api/v1/.*$", json_not_found),
    # The dashboard's page where admins issue and revoke keys.
    path("orgs/<str:org_id>/settings/api-keys/", key_views.api_keys, name="keys"),
    path("orgs/<str:org_id>/settings/api-keys/<int:key_id>/revoke/", key_views.api_key_revoke, name="key_revoke"),
]
