from django.urls import path

from alerts import views

app_name = "alerts"

org = "orgs/<str:org_id>/"
app = org + "apps/<str:app_id>/"

urlpatterns = [
    path(app + "alerts/", views.rules, name="rules"),
    path(app + "alerts/history/", views.history, name="history"),
    path(app + "alerts/new/", views.rule_new, name="rule_new"),
    path(app + "alerts/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path(app + "alerts/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path(org + "channels/", views.channels, name="channels"),
    path(org + "channels/new/", views.channel_new, name="channel_new"),
    path(org + "channels/<int:channel_id>/", views.channel_detail, name="channel_detail"),
    path(org + "channels/<int:channel_id>/test/", views.channel_test, name="channel_test"),
    path(org + "channels/<int:channel_id>/enable/", views.channel_enable, name="channel_enable"),
    path(org + "channels/<int:channel_id>/delete/", views.channel_delete, name="channel_delete"),
    path(org + "digest/", views.digest, name="digest"),
]
