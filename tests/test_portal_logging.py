"""Honest logging in the portal (issue 15): the time defaults to now, a time outside the dose's
§7 window is confirmed as an extra dose or refused, undo within a window, preset skip reasons."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.test_portal_support import course, due_now, give_login, local_today, signed_in
from tracker import clinical
from tracker.models import DoseEvent, FlagFact, PlannedDose
from tracker.rules import missed_doses
from tracker.services.doses import missed_fact_key

pytestmark = pytest.mark.django_db
LOCAL = "%Y-%m-%dT%H:%M"


@pytest.fixture
def user(patient):
    return give_login(patient, "pat")


@pytest.fixture
def portal(client, user):
    return signed_in(client, user)


def today_dose(patient, rx) -> PlannedDose:
    return PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))


def local_now(patient) -> dt.datetime:
    return timezone.localtime(timezone.now(), patient.zone)


# --- "Taken at another time" ----------------------------------------------------------------


def test_another_time_defaults_to_now_and_saving_the_default_is_accepted(portal, patient, clinician):
    dose = today_dose(patient, due_now(patient, clinician))
    html = portal.get(reverse("portal:today")).content.decode()
    field = re.search(rf'id="taken-at-{dose.pk}"[^>]*value="([^"]+)"', html, re.S)
    shown = dt.datetime.strptime(field.group(1), LOCAL).replace(tzinfo=patient.zone)
    assert abs(shown - local_now(patient)) < dt.timedelta(minutes=2)  # now, not the due time
    assert f"({patient.timezone} time)" in html  # the zone is named beside the field
    response = portal.post(
        reverse("portal:log_dose", args=[dose.pk]), {"action": "other_time", "taken_at": field.group(1)}
    )
    assert response.status_code == 302
    event = DoseEvent.objects.get()
    assert event.planned_dose == dose and event.occurred_at == shown


def test_a_time_outside_the_doses_window_asks_first_then_logs_an_extra_dose(portal, patient, clinician):
    # Twice daily, 12 h apart: each dose's §7 window is ±6 h. A time 7 h before this one is not it.
    now = local_now(patient)
    rx = course(patient, clinician, days_ago=1, times=(f"{now:%H:%M}", f"{now + dt.timedelta(hours=12):%H:%M}"))
    dose = PlannedDose.objects.filter(prescription=rx, due_at__lte=timezone.now()).order_by("-due_at").first()
    earlier = (dose.due_at - dt.timedelta(hours=7)).astimezone(patient.zone)
    url = reverse("portal:log_dose", args=[dose.pk])
    first = portal.post(url, {"action": "other_time", "taken_at": earlier.strftime(LOCAL)})
    assert first.status_code == 400
    html = first.content.decode()
    assert "too long before this dose&#x27;s time" in html and "to count as this dose" in html
    assert "Yes, log it as an extra dose" in html
    assert f'name="taken_at" value="{earlier.strftime(LOCAL)}"' in html  # the confirmation carries the time
    assert not DoseEvent.objects.exists()

    second = portal.post(url, {"action": "other_time", "taken_at": earlier.strftime(LOCAL), "extra_dose": "on"})
    assert second.status_code == 302
    event = DoseEvent.objects.get()
    assert event.planned_dose is None and event.timing == DoseEvent.Timing.UNPLANNED
    assert event.occurred_at == earlier
    dose.refresh_from_db()
    assert dose.status == PlannedDose.Status.PENDING  # the planned dose is still open to log
    assert "as an extra dose" in portal.get(reverse("portal:today")).content.decode()


def test_a_dose_due_today_is_never_taken_fourteen_days_earlier(portal, patient, clinician):
    dose = today_dose(patient, due_now(patient, clinician))
    long_ago = (dose.due_at - dt.timedelta(days=14)).astimezone(patient.zone).strftime(LOCAL)
    url = reverse("portal:log_dose", args=[dose.pk])
    days = clinical.get("PATIENT_LOG_MAX_DAYS_BACK")
    for extra in ({}, {"extra_dose": "on"}):  # not even as a confirmed extra dose
        response = portal.post(url, {"action": "other_time", "taken_at": long_ago, **extra})
        assert response.status_code == 400
        html = response.content.decode()
        assert f"That time is more than {days} days ago, too long ago to log here." in html
        assert f'id="taken-at-{dose.pk}-error"' in html  # beside the time field
        assert "Yes, log it as an extra dose" not in html
    assert not DoseEvent.objects.exists()


# --- Undo -----------------------------------------------------------------------------------


def test_a_tap_is_undone_within_the_window_and_kept_as_entered_in_error(portal, user, patient, clinician):
    dose = today_dose(patient, due_now(patient, clinician))
    portal.post(reverse("portal:log_dose", args=[dose.pk]), {"action": "taken"})
    event = DoseEvent.objects.get()
    page = portal.get(reverse("portal:today")).content.decode()
    assert "Just logged" in page and f'action="{reverse("portal:undo_log", args=[event.pk])}"' in page

    response = portal.post(reverse("portal:undo_log", args=[event.pk]))
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.entered_in_error_at is not None and event.entered_in_error_by == user
    assert "Undone by the patient" in event.entered_in_error_reason
    assert DoseEvent.objects.filter(pk=event.pk).exists()  # kept in history, not deleted
    dose.refresh_from_db()
    assert dose.status == PlannedDose.Status.PENDING
    page = portal.get(reverse("portal:today")).content.decode()
    assert "Undone: Sertraline is no longer recorded as taken" in page
    assert f'action="{reverse("portal:log_dose", args=[dose.pk])}"' in page  # it can be logged again
    assert "Just logged" not in page


def test_undo_after_the_window_is_refused_with_the_reason(portal, patient, clinician):
    dose = today_dose(patient, due_now(patient, clinician))
    portal.post(reverse("portal:log_dose", args=[dose.pk]), {"action": "taken"})
    event = DoseEvent.objects.get()
    minutes = clinical.get("PATIENT_UNDO_MINUTES")
    DoseEvent.objects.filter(pk=event.pk).update(created_at=event.created_at - dt.timedelta(minutes=minutes + 1))
    assert "Just logged" not in portal.get(reverse("portal:today")).content.decode()
    response = portal.post(reverse("portal:undo_log", args=[event.pk]))
    assert response.status_code == 400
    html = response.content.decode()
    assert "That could not be undone" in html
    assert f"More than {minutes} minutes have passed since you logged this dose" in html
    event.refresh_from_db()
    dose.refresh_from_db()
    assert event.entered_in_error_at is None and dose.status == PlannedDose.Status.TAKEN


def test_undo_of_a_dose_past_its_deadline_leaves_it_for_the_sweep_to_flag_missed(portal, patient, clinician):
    """Pending again, not missed at once: the next sweep claims it and raises the flag, as for any unlogged dose."""
    eight_ago = local_now(patient) - dt.timedelta(hours=8)  # sertraline's grace is 6 h: past its deadline
    rx = course(patient, clinician, days_ago=1, times=(f"{eight_ago:%H:%M}",))
    dose = PlannedDose.objects.filter(prescription=rx, due_at__lte=timezone.now()).order_by("-due_at").first()
    assert dose.deadline < timezone.now()
    portal.post(reverse("portal:log_dose", args=[dose.pk]), {"action": "taken"})  # late, inside its ±12 h window
    event = DoseEvent.objects.get(planned_dose=dose)
    assert portal.post(reverse("portal:undo_log", args=[event.pk])).status_code == 302
    dose.refresh_from_db()
    assert dose.status == PlannedDose.Status.PENDING
    missed_doses.sweep(now=timezone.now())
    dose.refresh_from_db()
    assert dose.status == PlannedDose.Status.MISSED
    assert FlagFact.objects.filter(key=missed_fact_key(dose.pk)).exists()


def test_another_patients_log_cannot_be_undone(portal, patient, clinician, other_patient, other_clinician):
    from tracker.services.doses import record_dose

    rx = due_now(other_patient, other_clinician)
    theirs = record_dose(prescription=rx, occurred_at=timezone.now(), reporter="patient")
    assert portal.post(reverse("portal:undo_log", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.entered_in_error_at is None


# --- Skip reasons ---------------------------------------------------------------------------


def test_skip_with_a_preset_reason_is_stored_as_that_choice(portal, patient, clinician):
    dose = today_dose(patient, due_now(patient, clinician))
    html = portal.get(reverse("portal:today")).content.decode()
    for label in ("Forgot", "Side effects", "Ran out", "Felt better", "Other reason"):
        assert f"<span>{label}</span>" in html
    response = portal.post(
        reverse("portal:log_dose", args=[dose.pk]), {"action": "skipped", "skip_choice": "side_effects"}
    )
    assert response.status_code == 302
    event = DoseEvent.objects.get()
    assert (event.skip_choice, event.skip_reason) == ("side_effects", "Side effects")
    assert "Skipped: Side effects" in portal.get(reverse("portal:today")).content.decode()


def test_other_reason_needs_words_and_an_unknown_choice_is_refused(portal, patient, clinician):
    dose = today_dose(patient, due_now(patient, clinician))
    url = reverse("portal:log_dose", args=[dose.pk])
    other = portal.post(url, {"action": "skipped", "skip_choice": "other", "skip_reason": " "})
    assert other.status_code == 400
    assert (
        f'id="skip-reason-{dose.pk}-error">You chose another reason: please say what it was.' in other.content.decode()
    )
    bogus = portal.post(url, {"action": "skipped", "skip_choice": "bored"})
    assert bogus.status_code == 400 and "Choose one of the reasons in the list." in bogus.content.decode()
    assert not DoseEvent.objects.exists()
    assert (
        portal.post(url, {"action": "skipped", "skip_choice": "other", "skip_reason": "Travelling"}).status_code == 302
    )
    assert DoseEvent.objects.get().skip_choice == "other"
