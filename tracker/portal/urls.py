"""Patient portal URLs; every id in them is looked up among the logged-in patient's own rows."""

from django.urls import path

from tracker.portal import push_views, views

app_name = "portal"

urlpatterns = [
    path("", views.today, name="today"),
    path("doses/<int:planned_dose_id>/", views.log_dose, name="log_dose"),
    path("doses/<int:planned_dose_id>/offline-tap/", views.send_offline_tap, name="send_offline_tap"),
    path("logged/<int:event_id>/undo/", views.undo_log, name="undo_log"),
    path("medicines/<int:prescription_id>/as-needed/", views.log_as_needed, name="log_as_needed"),
    path("medicines/<int:prescription_id>/outside-clinic/", views.report_outside_clinic, name="outside_clinic"),
    path(
        "medicines/<int:prescription_id>/outside-clinic/sent/",
        views.outside_clinic_reported,
        name="outside_clinic_reported",
    ),
    path("questionnaires/", views.questionnaires, name="questionnaires"),
    path("questionnaires/check-in/", views.checkin, name="checkin"),
    path("questionnaires/<slug:instrument>/", views.questionnaire, name="questionnaire"),
    path("answers/<int:assessment_id>/", views.result, name="result"),
    path("progress/", views.progress, name="progress"),
    path("reminders/", views.reminders, name="reminders"),
    path("language/", views.change_language, name="language"),
    path("reminders/push/", push_views.push_subscribe, name="push_subscribe"),
    path("reminders/push/off/", push_views.push_unsubscribe, name="push_unsubscribe"),
    path("reminders/push/devices/<int:subscription_id>/off/", push_views.push_end_device, name="push_end_device"),
]
