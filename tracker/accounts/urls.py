"""The second-factor pages, under /admin/mfa/ (namespace ``mfa``)."""

from django.urls import path

from tracker.accounts import views

app_name = "mfa"

urlpatterns = [
    path("", views.start, name="start"),
    path("setup/", views.setup, name="setup"),
    path("verify/", views.verify, name="verify"),
]
