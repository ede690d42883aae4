from django.urls import path

from dashboard import lifecycle_views, views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/", views.background_jobs, name="background_jobs"),
    path("orgs/<str:org_id>/", views.org_overview, name="org_overview"),
    path("orgs/<str:org_id>/apps/<str:app_id>/", views.app_overview, name="app_overview"),
    path("orgs/<str:org_id>/apps/<str:app_id>/events/", views.app_events, name="app_events"),
    path(
        "orgs/<str:org_id>/apps/<str:app_id>/events/<uuid:event_id>/",
        views.event_detail,
        name="event_detail",
    ),
    path("orgs/<str:org_id>/apps/<str:app_id>/export/", lifecycle_views.export_events, name="export_events"),
    # Erasure spans the organization's events, so the page lives here: organizations/ imports no other app.
    path("orgs/<str:org_id>/erase/", lifecycle_views.erase_user, name="erase_user"),
]
