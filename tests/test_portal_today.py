"""The "Today" page and dose logging: taken, skipped, another time, clinic-only drugs, query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.dosing import at, daily_course
from tests.test_portal_support import as_needed, clinic_only, course, due_now, give_login, local_today, signed_in
from tracker import clinical
from tracker.models import DoseEvent, Flag, FlagKind, PlannedDose, Severity
from tracker.portal import selectors
from tracker.services.doses import record_dose
from tracker.services.patients import change_timezone

pytestmark = pytest.mark.django_db
LOCAL = "%Y-%m-%dT%H:%M"


@pytest.fixture
def user(patient):
    return give_login(patient, "pat")


@pytest.fixture
def portal(client, user):
    return signed_in(client, user)


def todays_doses(patient, rx) -> list[PlannedDose]:
    return list(PlannedDose.objects.filter(prescription=rx, local_date=local_today(patient)).order_by("due_at"))


def test_today_lists_the_days_doses_in_local_time_with_a_taken_button(portal, patient, clinician):
    patient.timezone = "America/New_York"
    patient.save(update_fields=["timezone"])
    rx = course(patient, clinician, times=("08:00", "20:00"))
    html = portal.get(reverse("portal:today")).content.decode()
    morning, _evening = todays_doses(patient, rx)
    assert f'action="{reverse("portal:log_dose", args=[morning.pk])}"' in html
    assert "Due at <time" in html and ">08:00</time>" in html and ">20:00</time>" in html  # New York wall clock
    assert html.count(">Taken<span") == 2


def test_one_tap_taken_records_the_planned_dose_as_the_patient(portal, user, patient, clinician):
    rx = due_now(patient, clinician)
    dose = todays_doses(patient, rx)[0]
    response = portal.post(reverse("portal:log_dose", args=[dose.pk]), {"action": "taken"})
    assert response.status_code == 302 and response["Location"] == reverse("portal:today")
    event = DoseEvent.objects.get()
    assert (event.planned_dose, event.reporter, event.recorded_by, event.outcome) == (dose, "patient", user, "taken")
    dose.refresh_from_db()
    assert dose.status == PlannedDose.Status.TAKEN
    page = portal.get(reverse("portal:today")).content.decode()
    assert "Saved: Sertraline taken at" in page  # the confirmation message
    assert "✓</span> Taken at" in page  # the logged state replaces the buttons
    assert f'action="{reverse("portal:log_dose", args=[dose.pk])}"' not in page


def test_a_dose_logged_twice_is_refused_in_plain_words(portal, patient, clinician):
    dose = todays_doses(patient, due_now(patient, clinician))[0]
    portal.post(reverse("portal:log_dose", args=[dose.pk]), {"action": "taken"})
    response = portal.post(reverse("portal:log_dose", args=[dose.pk]), {"action": "taken"})
    assert response.status_code == 400
    assert "This dose has already been recorded." in response.content.decode()
    assert DoseEvent.objects.count() == 1


def test_skipped_needs_a_reason_shown_beside_the_field(portal, patient, clinician):
    dose = todays_doses(patient, course(patient, clinician))[0]
    url = reverse("portal:log_dose", args=[dose.pk])
    response = portal.post(url, {"action": "skipped", "skip_reason": "  "})
    assert response.status_code == 400
    html = response.content.decode()
    assert f'<p class="error" id="skip-reason-{dose.pk}-error">Please say why the dose was skipped.</p>' in html
    assert f'aria-describedby="skip-reason-{dose.pk}-error"' in html
    assert '<details class="more" open>' in html  # the skip form is open again
    assert not DoseEvent.objects.exists()

    assert portal.post(url, {"action": "skipped", "skip_reason": "Felt sick"}).status_code == 302
    event = DoseEvent.objects.get()
    assert (event.outcome, event.skip_reason) == ("skipped", "Felt sick")
    assert "Skipped: Felt sick" in portal.get(reverse("portal:today")).content.decode()


def test_taken_after_midnight_is_credited_to_the_dose_the_patient_chose(portal, patient, clinician):
    patient.timezone = "Asia/Tokyo"
    patient.save(update_fields=["timezone"])
    rx = course(patient, clinician, days_ago=1)
    today = local_today(patient)
    last_night = PlannedDose.objects.filter(prescription=rx, local_date=today - dt.timedelta(days=1)).last()
    taken = dt.datetime.combine(today, dt.time(0, 30), tzinfo=patient.zone)  # 00:30 Tokyo time, today
    if taken > timezone.now():  # the test runs in the first half hour of the Tokyo day
        taken = last_night.due_at.astimezone(patient.zone) + dt.timedelta(minutes=20)
    response = portal.post(
        reverse("portal:log_dose", args=[last_night.pk]), {"action": "other_time", "taken_at": taken.strftime(LOCAL)}
    )
    assert response.status_code == 302
    event = DoseEvent.objects.get()
    assert event.planned_dose == last_night  # the dose the patient picked, not the nearest slot
    assert event.occurred_at == taken  # read as Tokyo wall-clock time


def test_another_time_in_the_future_is_refused_beside_the_time_field(portal, patient, clinician):
    dose = todays_doses(patient, course(patient, clinician))[0]
    tolerance = clinical.get("FUTURE_LOG_TOLERANCE_MINUTES")
    later = timezone.localtime(timezone.now(), patient.zone) + dt.timedelta(minutes=tolerance + 30)
    response = portal.post(
        reverse("portal:log_dose", args=[dose.pk]), {"action": "other_time", "taken_at": later.strftime(LOCAL)}
    )
    assert response.status_code == 400
    html = response.content.decode()
    message = "That time is in the future. Enter the time you took the dose."
    assert f'<p class="error" id="taken-at-{dose.pk}-error">{message}</p>' in html
    assert f'value="{later.strftime(LOCAL)}"' in html  # what the patient typed is kept
    assert not DoseEvent.objects.exists()


def test_another_time_without_a_time_or_with_garbage_is_refused(portal, patient, clinician):
    dose = todays_doses(patient, course(patient, clinician))[0]
    url = reverse("portal:log_dose", args=[dose.pk])
    assert "Enter the date and time you took it." in portal.post(url, {"action": "other_time"}).content.decode()
    bad = portal.post(url, {"action": "other_time", "taken_at": "yesterday-ish"})
    assert bad.status_code == 400 and "Enter a date and a time" in bad.content.decode()
    assert portal.post(url, {"action": "eaten"}).status_code == 400
    assert not DoseEvent.objects.exists()


def test_clinic_only_drug_has_no_taken_button_only_the_outside_clinic_report(portal, patient, clinician):
    esk = clinic_only(patient, clinician)
    (session,) = todays_doses(patient, esk)
    html = portal.get(reverse("portal:today")).content.decode()
    assert "Given at the clinic by your care team" in html
    assert f'action="{reverse("portal:log_dose", args=[session.pk])}"' not in html
    assert ">Taken<span" not in html
    assert f'href="{reverse("portal:outside_clinic", args=[esk.pk])}"' in html
    assert "I took Esketamine (nasal) outside the clinic" in html
    # A hand-made POST is still refused by the service.
    response = portal.post(reverse("portal:log_dose", args=[session.pk]), {"action": "taken"})
    assert response.status_code == 400 and "given only at the clinic" in response.content.decode()
    assert not DoseEvent.objects.exists()


def test_outside_clinic_report_tells_the_clinic_and_the_patient_what_to_do(portal, user, patient, clinician):
    esk = clinic_only(patient, clinician)
    url = reverse("portal:outside_clinic", args=[esk.pk])
    form = portal.get(url).content.decode()
    assert "call your local emergency number now" in form
    response = portal.post(url, {"taken_at": "", "note": "A friend gave me some"})
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:outside_clinic_reported", args=[esk.pk])
    event = DoseEvent.objects.get()
    assert event.outside_clinic_report and event.recorded_by == user and event.note == "A friend gave me some"
    flag = Flag.objects.get(kind=FlagKind.ESK_OUTSIDE_CLINIC)
    assert flag.severity == Severity.CRITICAL and flag.patient == patient
    done = portal.get(response["Location"]).content.decode()
    assert "Your clinic has been told" in done and "If you feel unwell, do not wait." in done


def test_outside_clinic_report_refuses_a_future_time_and_ordinary_drugs(portal, patient, clinician):
    esk = clinic_only(patient, clinician)
    later = timezone.localtime(timezone.now(), patient.zone) + dt.timedelta(hours=2)
    response = portal.post(reverse("portal:outside_clinic", args=[esk.pk]), {"taken_at": later.strftime(LOCAL)})
    assert response.status_code == 400 and "That time is in the future." in response.content.decode()
    ordinary = course(patient, clinician)
    assert portal.get(reverse("portal:outside_clinic", args=[ordinary.pk])).status_code == 404
    assert not Flag.objects.exists()


def test_as_needed_medicine_logged_now_without_a_planned_dose(portal, patient, clinician):
    prn = as_needed(patient, clinician)
    html = portal.get(reverse("portal:today")).content.decode()
    assert "Taken today: 0 (at most 2 a day)" in html
    assert portal.post(reverse("portal:log_as_needed", args=[prn.pk]), {}).status_code == 302
    event = DoseEvent.objects.get()
    assert event.planned_dose is None and event.timing == DoseEvent.Timing.UNPLANNED
    assert "Taken today: 1 (at most 2 a day)" in portal.get(reverse("portal:today")).content.decode()


def test_yesterdays_open_doses_are_offered_for_late_logging(portal, patient, clinician):
    rx = course(patient, clinician, days_ago=1)
    html = portal.get(reverse("portal:today")).content.decode()
    yesterday = PlannedDose.objects.filter(prescription=rx, local_date=local_today(patient) - dt.timedelta(days=1))
    assert "From yesterday, not logged yet" in html
    for dose in yesterday:
        assert f'id="dose-{dose.pk}"' in html


def test_a_dose_planned_before_the_patient_moved_far_away_is_still_offered(patient, clinician):
    """The day a dose belongs to is the one it was planned for, even 25 hours of UTC offset away."""
    patient.timezone = "Pacific/Kiritimati"  # UTC+14
    patient.save(update_fields=["timezone"])
    rx = daily_course(patient, clinician, start="2026-06-01", times=("00:30",))
    change_timezone(patient=patient, new_timezone="Pacific/Pago_Pago", now=at("2026-06-02T12:00"))  # UTC-11
    planned = PlannedDose.objects.get(prescription=rx, local_date=dt.date(2026, 6, 2))
    assert planned.due_at == at("2026-06-01T10:30")  # 00:30 on 2 June in Kiritimati, kept as it was
    today = selectors.today_for_patient(patient, at("2026-06-03T12:00"))  # 01:00 on 3 June in Pago Pago
    assert today.date == dt.date(2026, 6, 3)
    assert planned in today.left_from_yesterday


def _long_history(patient, clinician, days: int) -> None:
    """A course with ``days`` of history: doses taken, skipped and missed, plus PRN and clinic drugs."""
    rx = course(patient, clinician, days_ago=days)
    as_needed(patient, clinician)
    clinic_only(patient, clinician, days_ago=days)
    past = list(PlannedDose.objects.filter(prescription=rx, local_date__lt=local_today(patient)))
    for dose in past[::3]:
        record_dose(prescription=rx, planned_dose=dose, occurred_at=dose.due_at, reporter="patient", now=dose.due_at)
    PlannedDose.objects.filter(pk__in=[d.pk for d in past[1::3]]).update(status=PlannedDose.Status.MISSED)


@pytest.mark.parametrize("days", [1, 90])
def test_today_page_has_a_fixed_query_count(portal, patient, clinician, days, django_assert_num_queries):
    _long_history(patient, clinician, days)
    with django_assert_num_queries(7):
        # 1 session, 2 user (the login), 3 patient with clinic (one join),
        # 4 yesterday's and today's planned doses with drug and logged time (subqueries),
        # 5 schedules in force with their drugs and today's taken count (PRN, clinic-only; a subquery),
        # 6 last completion of each weekly questionnaire (one GROUP BY),
        # 7 the patient's taps still inside the undo window.
        response = portal.get(reverse("portal:today"))
    assert response.status_code == 200


@pytest.mark.parametrize("days", [1, 90])
def test_dose_post_has_a_fixed_query_count(portal, patient, clinician, days, django_assert_num_queries):
    _long_history(patient, clinician, days)
    rx = patient.prescriptions.get(drug__name="sertraline")
    dose = todays_doses(patient, rx)[0]
    now = timezone.localtime(timezone.now(), patient.zone)
    dose.due_at = now.replace(second=0, microsecond=0)  # due now: the tap falls inside its §7 window
    dose.deadline = dose.due_at + dt.timedelta(hours=6)
    dose.save(update_fields=["due_at", "deadline"])
    with django_assert_num_queries(11):
        # 1 session, 2 user, 3 patient with clinic,
        # 4 the planned dose, scoped to the patient, with prescription and drug,
        # record_dose: 5 savepoint (its transaction),
        # 6 the prescription's doses around it, for its §7 matching window,
        # 7 mark the planned dose taken if it is still as read (one conditional UPDATE, no second read),
        # 8 insert the dose event, 9 its history row,
        # 10 the day's taken total for the daily maximum (logged amounts and implied doses in one SUM),
        # 11 release the service's savepoint.
        response = portal.post(reverse("portal:log_dose", args=[dose.pk]), {"action": "taken"})
    assert response.status_code == 302


# --- Before the session (issue 16) -----------------------------------------------------------

MORNING = dt.datetime(2026, 6, 1, 7, 0, tzinfo=dt.UTC)  # 08:00 in London (BST), before a 10:00 session


def test_today_shows_the_labels_advice_before_todays_esketamine_session(portal, patient, clinician, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: MORNING)
    clinic_only(patient, clinician)
    html = portal.get(reverse("portal:today")).content.decode()
    assert "Your clinic session today at" in html and ">10:00</time>" in html
    assert "Before your session" in html
    for line in clinical.get("ESK_BEFORE_SESSION_ADVICE"):
        assert line in html
    assert "Do not eat for 2 hours before your session" in html
    assert "Do not drink anything for 30 minutes before your session." in html
    assert "Arrange for someone to take you home." in html


def test_no_advice_once_the_session_is_given_or_without_a_clinic_session(portal, patient, clinician, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: MORNING)
    course(patient, clinician)  # tablets only
    assert "Before your session" not in portal.get(reverse("portal:today")).content.decode()
    esk = clinic_only(patient, clinician)
    PlannedDose.objects.filter(prescription=esk, local_date=dt.date(2026, 6, 1)).update(status=PlannedDose.Status.TAKEN)
    assert "Before your session" not in portal.get(reverse("portal:today")).content.decode()
