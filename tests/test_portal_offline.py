"""The portal as an offline-safe app (issue 15): a dose tapped with no connection is sent later
by the page's script (static/portal/offline.js) and stored once, at the time it was tapped.

The script's request is made here with the test client, as the phone sends it: the tap's key,
the tap's time and the send time from the phone's clock.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import PatientFactory
from tests.test_portal_support import course, due_now, give_login, local_today, signed_in
from tracker import clinical
from tracker.models import DoseEvent, PlannedDose
from tracker.services import doses as dose_service

pytestmark = pytest.mark.django_db
SECOND = dt.timedelta(seconds=2)


@pytest.fixture
def user(patient):
    return give_login(patient, "pat")


@pytest.fixture
def portal(client, user):
    return signed_in(client, user)


def iso(moment: dt.datetime) -> str:
    """As JavaScript's toISOString() writes it."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def send(portal, dose: PlannedDose, *, key: uuid.UUID, tapped_at: dt.datetime, sent_at: dt.datetime | None = None):
    return portal.post(
        reverse("portal:send_offline_tap", args=[dose.pk]),
        {"client_key": str(key), "tapped_at": iso(tapped_at), "sent_at": iso(sent_at or timezone.now())},
        HTTP_ACCEPT="application/json",
    )


def dose_due_near(rx, moment: dt.datetime) -> PlannedDose:
    return PlannedDose.objects.get(prescription=rx, due_at__gt=moment - dt.timedelta(minutes=2), due_at__lte=moment)


def test_an_offline_tap_is_stored_at_the_time_it_was_tapped_matched_by_that_time(portal, patient, clinician):
    """Two doses 6 h apart; the first tapped 5 min after its time, sent 6 h later, is the first."""
    now = timezone.now()
    local = timezone.localtime(now, patient.zone)
    earlier = local - dt.timedelta(hours=6)
    rx = course(patient, clinician, days_ago=1, times=(f"{earlier:%H:%M}", f"{local:%H:%M}"))
    first = dose_due_near(rx, now - dt.timedelta(hours=6))
    tapped_at = first.due_at + dt.timedelta(minutes=5)

    response = send(portal, first, key=uuid.uuid4(), tapped_at=tapped_at, sent_at=now)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    event = DoseEvent.objects.get()
    assert response.json() == {"saved": True, "event": event.pk, "message": response.json()["message"]}
    assert abs(event.occurred_at - tapped_at) < SECOND  # the tap's time, not the time it arrived
    assert event.planned_dose_id == first.pk and event.timing == DoseEvent.Timing.ON_TIME
    assert dose_due_near(rx, now).status == PlannedDose.Status.PENDING  # the later dose stays open
    assert f"taken at {timezone.localtime(tapped_at, patient.zone):%H:%M}" in response.json()["message"]


def test_a_replayed_tap_is_stored_once_and_answers_with_the_same_dose(portal, patient, clinician):
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))
    key, tapped_at = uuid.uuid4(), timezone.now() - dt.timedelta(minutes=20)

    first = send(portal, dose, key=key, tapped_at=tapped_at)
    again = send(portal, dose, key=key, tapped_at=tapped_at)  # the answer was lost; the phone sends again

    assert first.status_code == again.status_code == 200
    assert first.json()["event"] == again.json()["event"]
    event = DoseEvent.objects.get()
    assert event.client_key == key and abs(event.occurred_at - tapped_at) < SECOND


def test_a_replay_after_undo_does_not_bring_the_dose_back(portal, patient, clinician, user):
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))
    key = uuid.uuid4()
    event_id = send(portal, dose, key=key, tapped_at=timezone.now()).json()["event"]
    portal.post(reverse("portal:undo_log", args=[event_id]))

    again = send(portal, dose, key=key, tapped_at=timezone.now())

    assert again.status_code == 200 and again.json()["event"] == event_id
    assert DoseEvent.objects.count() == 1
    assert DoseEvent.objects.get().entered_in_error_at is not None
    dose.refresh_from_db()
    assert dose.status == PlannedDose.Status.PENDING


def test_a_phone_clock_an_hour_fast_still_stores_the_moment_of_the_tap(portal, patient, clinician):
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))
    fast = dt.timedelta(hours=1)
    real_tap = timezone.now() - dt.timedelta(minutes=40)

    response = send(portal, dose, key=uuid.uuid4(), tapped_at=real_tap + fast, sent_at=timezone.now() + fast)

    assert response.status_code == 200, response.content
    assert abs(DoseEvent.objects.get().occurred_at - real_tap) < SECOND


def test_a_tap_older_than_the_patient_log_limit_is_refused_with_the_reason(portal, patient, clinician):
    days = clinical.get("PATIENT_LOG_MAX_DAYS_BACK")
    rx = course(patient, clinician, days_ago=days + 2, times=("08:00",))
    old = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient) - dt.timedelta(days=days + 1))

    response = send(portal, old, key=uuid.uuid4(), tapped_at=old.due_at)

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error.startswith("Sertraline was not saved: ")
    assert f"more than {days} days ago" in error
    assert not DoseEvent.objects.exists()


def test_a_tap_outside_the_doses_window_is_refused_not_stored_as_another_dose(portal, patient, clinician):
    now = timezone.now()
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))
    cap = dt.timedelta(hours=clinical.get("MATCH_WINDOW_CAP_HOURS"))

    response = send(portal, dose, key=uuid.uuid4(), tapped_at=dose.due_at - cap - dt.timedelta(hours=1), sent_at=now)

    assert response.status_code == 400
    assert "too long before this dose's time" in response.json()["errors"][0]
    assert not DoseEvent.objects.exists()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"tapped_at": "2026-12-06T08:00:00.000Z", "sent_at": "2026-12-06T09:00:00.000Z"}, "The tap has no key."),
        ({"client_key": "not-a-key", "tapped_at": "x", "sent_at": "y"}, "The tap's key is not valid."),
        ({"client_key": str(uuid.uuid4()), "tapped_at": "2026-12-06T08:00", "sent_at": "2026-12-06T09:00:00Z"}, "zone"),
    ],
)
def test_a_malformed_tap_is_refused_in_words_never_a_500(portal, patient, clinician, data, words):
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))
    response = portal.post(reverse("portal:send_offline_tap", args=[dose.pk]), data)
    assert response.status_code == 400
    assert any(words in error for error in response.json()["errors"])
    assert not DoseEvent.objects.exists()


def test_another_patients_dose_answers_404_in_json(portal, clinic, clinician):
    other = PatientFactory(clinic=clinic, responsible_clinician=clinician)
    rx = due_now(other, clinician)
    theirs = PlannedDose.objects.get(prescription=rx, local_date=local_today(other))
    response = send(portal, theirs, key=uuid.uuid4(), tapped_at=timezone.now())
    assert response.status_code == 404
    assert response.json() == {"saved": False, "errors": ["That dose is no longer in your plan, so it was not saved."]}
    assert not DoseEvent.objects.exists()


def test_a_double_tap_online_with_the_pages_key_is_one_dose(portal, patient, clinician):
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))
    data = {"action": "taken", "client_key": str(uuid.uuid4())}
    first = portal.post(reverse("portal:log_dose", args=[dose.pk]), data)
    second = portal.post(reverse("portal:log_dose", args=[dose.pk]), data, follow=True)
    assert first.status_code == 302
    assert second.status_code == 200
    assert "Saved: Sertraline taken at" in second.content.decode()
    assert DoseEvent.objects.count() == 1


def test_a_concurrent_replay_that_loses_the_race_answers_with_the_winners_dose(patient, clinician, user, monkeypatch):
    """The replay read no key (the first had not committed), then found its dose recorded."""
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))
    key, now = uuid.uuid4(), timezone.now()
    kwargs = {"prescription": rx, "occurred_at": now, "reporter": "patient", "recorded_by": user, "now": now}
    winner = dose_service.record_dose(planned_dose=dose, client_key=key, **kwargs)
    looked_up = dose_service._by_client_key
    calls = []

    def first_misses(prescription, client_key):
        calls.append(client_key)
        return None if len(calls) == 1 else looked_up(prescription, client_key)

    monkeypatch.setattr(dose_service, "_by_client_key", first_misses)
    replay = dose_service.record_dose(planned_dose=PlannedDose.objects.get(pk=dose.pk), client_key=key, **kwargs)

    assert replay.pk == winner.pk and len(calls) == 2
    assert DoseEvent.objects.count() == 1


def test_the_app_is_installable_from_this_origin(portal):
    worker = portal.get("/sw.js")
    assert worker.status_code == 200
    assert worker["Content-Type"].startswith("text/javascript")
    assert worker["Service-Worker-Allowed"] == "/"
    assert 'addEventListener("fetch"' in worker.content.decode()

    manifest = portal.get("/manifest.webmanifest")
    assert manifest["Content-Type"] == "application/manifest+json"
    body = manifest.json()
    assert body["start_url"] == "/" and body["scope"] == "/" and body["display"] == "standalone"
    assert {icon["sizes"] for icon in body["icons"]} == {"192x192", "512x512"}
    assert all(icon["src"].startswith("/static/portal/icon-") for icon in body["icons"])

    page = portal.get(reverse("portal:today")).content.decode()
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert 'src="/static/portal/offline.js" defer' in page
    assert "<script>" not in page  # the CSP allows no inline script


def test_the_waiting_region_and_the_keys_place_are_on_today(portal, patient, clinician):
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))
    page = portal.get(reverse("portal:today")).content.decode()
    assert 'id="offline-status"' in page
    assert f'data-offline-url="/doses/{dose.pk}/offline-tap/"' in page
