"""Email reminders the patient controls (issue 15): the sweep, its outbox, and the portal page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import translation

from tests.dosing import at, daily_course
from tests.test_portal_support import as_needed, clinic_only, course, give_login, signed_in
from tracker import tasks
from tracker.models import DoseReminder, PlannedDose, PrescriptionReminder, ReminderSettings
from tracker.rules import reminders
from tracker.services.doses import record_dose
from tracker.services.reminders import ReminderChoice, save_reminder_settings

pytestmark = pytest.mark.django_db
ADDRESS = "alex@example.org"


@pytest.fixture
def reminded(patient, clinician):
    return remind_daily(patient, clinician)


def remind_daily(patient, clinician):
    """A 07:10 daily course from 27 March 2026, reminded 15 minutes before, to the patient's address."""
    patient.email = ADDRESS
    patient.save(update_fields=["email"])
    rx = daily_course(patient, clinician, times=("07:10",), start="2026-03-27")
    PrescriptionReminder.objects.create(prescription=rx, patient=patient, enabled=True, minutes_before=15)
    return rx


def dose_on(rx, day: str) -> PlannedDose:
    return PlannedDose.objects.get(prescription=rx, local_date=dt.date.fromisoformat(day))


def test_the_sweep_sends_once_per_due_dose_with_a_link_to_its_taken_button(reminded):
    dose = dose_on(reminded, "2026-03-27")  # 07:10 GMT, reminded at 06:55

    reminders.sweep(now=at("2026-03-27T06:54"))
    assert mail.outbox == []  # not yet
    reminders.sweep(now=at("2026-03-27T06:55"))
    reminders.sweep(now=at("2026-03-27T06:56"))  # a second run, or a task delivered twice
    reminders.sweep(now=at("2026-03-27T06:57"))

    (email,) = mail.outbox
    assert email.to == [ADDRESS]
    assert email.subject == "Reminder: a dose is due at 07:10"
    assert f"/#dose-{dose.pk}" in email.body and "/reminders/" in email.body
    assert "Sertraline" not in email.subject + email.body  # no medicine named in an email
    assert DoseReminder.objects.get().status == DoseReminder.Status.SENT


def test_the_email_is_written_in_the_portals_language_code_for_the_patient(reminded, patient, monkeypatch):
    """The portal's own helper (services.languages.django_language) picks the email's language,
    so email and portal agree: an English patient ("en") reads the site's en-gb, as on the portal
    (its catalogue and formats), not Django's bare "en"; a Spanish one "es"."""
    real, used = reminders.render_to_string, []

    def spy(*args, **kwargs):
        used.append(translation.get_language())
        return real(*args, **kwargs)

    monkeypatch.setattr(reminders, "render_to_string", spy)
    assert patient.language == "en"
    reminders.sweep(now=at("2026-03-27T06:55"))
    patient.language = "es"
    patient.save(update_fields=["language"])
    reminders.sweep(now=at("2026-03-28T06:55"))
    assert used == ["en-gb", "en-gb", "es", "es"]  # subject and body, each day


def test_never_for_a_dose_already_logged(reminded, patient):
    dose = dose_on(reminded, "2026-03-27")
    record_dose(
        prescription=reminded, planned_dose=dose, occurred_at=at("2026-03-27T06:40"), reporter="patient",
        now=at("2026-03-27T06:40"),
    )  # fmt: skip
    reminders.sweep(now=at("2026-03-27T06:55"))
    assert mail.outbox == []
    assert not DoseReminder.objects.exists()


def test_an_smtp_outage_delays_the_reminder_and_a_dose_logged_meanwhile_is_not_reminded(reminded, monkeypatch):
    first, second = dose_on(reminded, "2026-03-27"), dose_on(reminded, "2026-03-28")

    def down(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(reminders, "send_mail", down)
    reminders.sweep(now=at("2026-03-27T06:55"))
    assert DoseReminder.objects.get(planned_dose=first).status == DoseReminder.Status.PENDING  # still owed
    monkeypatch.undo()
    reminders.sweep(now=at("2026-03-27T06:58"))  # the server is back: sent, once
    assert len(mail.outbox) == 1 and DoseReminder.objects.get(planned_dose=first).status == "sent"

    monkeypatch.setattr(reminders, "send_mail", down)
    reminders.sweep(now=at("2026-03-28T06:55"))
    record_dose(
        prescription=reminded, planned_dose=second, occurred_at=at("2026-03-28T06:57"), reporter="patient",
        now=at("2026-03-28T06:57"),
    )  # fmt: skip
    monkeypatch.undo()
    reminders.sweep(now=at("2026-03-28T06:58"))
    assert len(mail.outbox) == 1
    assert DoseReminder.objects.get(planned_dose=second).status == DoseReminder.Status.LOGGED


@pytest.mark.parametrize(
    ("day", "still_quiet", "quiet_ends"),
    [
        ("2026-03-28", "2026-03-28T06:59", "2026-03-28T07:00"),  # GMT: 07:00 local is 07:00 UTC
        ("2026-03-29", "2026-03-29T05:59", "2026-03-29T06:00"),  # spring change: 07:00 BST is 06:00 UTC
        ("2026-10-24", "2026-10-24T05:59", "2026-10-24T06:00"),  # BST
        ("2026-10-25", "2026-10-25T06:59", "2026-10-25T07:00"),  # autumn change: back to GMT
    ],
)
def test_quiet_hours_hold_on_the_wall_clock_across_daylight_saving(reminded, patient, day, still_quiet, quiet_ends):
    """Quiet 22:00-07:00 London; a 07:10 dose's 06:55 reminder waits for 07:00 local, whatever the offset."""
    ReminderSettings.objects.create(patient=patient, quiet_from=dt.time(22), quiet_until=dt.time(7))
    rx = reminded
    if day.startswith("2026-10"):
        rx = course_in_october(patient, rx)

    reminders.sweep(now=at(still_quiet))
    assert mail.outbox == []
    reminders.sweep(now=at(quiet_ends))
    assert len(mail.outbox) == 1
    assert DoseReminder.objects.get().planned_dose == dose_on(rx, day)
    assert DoseReminder.objects.get().send_at == at(quiet_ends)


def course_in_october(patient, rx):
    """The same choice on a course planned around the autumn change."""
    october = daily_course(patient, rx.prescriber, name="fluoxetine", dose="20", times=("07:10",), start="2026-10-23")
    PrescriptionReminder.objects.filter(prescription=rx).update(enabled=False)
    PrescriptionReminder.objects.create(prescription=october, patient=patient, enabled=True, minutes_before=15)
    return october


def test_a_reminder_whose_quiet_hours_outlast_the_dose_is_never_sent(reminded, patient):
    ReminderSettings.objects.create(patient=patient, quiet_from=dt.time(22), quiet_until=dt.time(7, 30))
    for minute in ("06:55", "07:10", "07:30", "08:00"):
        reminders.sweep(now=at(f"2026-03-27T{minute}"))
    assert mail.outbox == []
    assert DoseReminder.objects.get().status == DoseReminder.Status.QUIET


def test_reminders_off_or_a_clinic_only_medicine_send_nothing(reminded, patient, clinician):
    PrescriptionReminder.objects.filter(prescription=reminded).update(enabled=False)
    reminders.sweep(now=at("2026-03-27T06:55"))
    assert mail.outbox == [] and not DoseReminder.objects.exists()


# --- The settings race: the patient changes their mind after a reminder was queued ----------


def change_settings(patient, rx, *, enabled=True, quiet=(None, None)):
    """What the portal's reminders page saves (services.reminders), as the patient would."""
    save_reminder_settings(
        patient=patient,
        quiet_from=quiet[0],
        quiet_until=quiet[1],
        choices={rx.pk: ReminderChoice(enabled=enabled, minutes_before=15)},
        now=at("2026-03-27T06:55"),
    )


def test_a_queued_reminder_for_a_medicine_turned_off_since_is_not_sent(reminded, patient):
    assert reminders.plan(now=at("2026-03-27T06:55")) == 1  # queued, owed
    change_settings(patient, reminded, enabled=False)
    reminders.send_owed(now=at("2026-03-27T06:55"))
    reminders.sweep(now=at("2026-03-27T07:00"))
    assert mail.outbox == []
    assert not DoseReminder.objects.exists()  # the owed row went: nothing was sent

    change_settings(patient, reminded, enabled=True)  # back on before the next dose: reminded again
    reminders.sweep(now=at("2026-03-28T06:55"))
    assert len(mail.outbox) == 1


def test_quiet_hours_set_after_queuing_silence_or_postpone_the_owed_reminder(reminded, patient):
    first, second = dose_on(reminded, "2026-03-27"), dose_on(reminded, "2026-03-28")
    reminders.plan(now=at("2026-03-27T06:55"))
    change_settings(patient, reminded, quiet=(dt.time(22), dt.time(7, 30)))  # past the 07:10 dose
    reminders.send_owed(now=at("2026-03-27T06:55"))
    assert mail.outbox == [] and DoseReminder.objects.get(planned_dose=first).status == DoseReminder.Status.QUIET

    change_settings(patient, reminded)  # no quiet hours when the next day's is queued
    reminders.plan(now=at("2026-03-28T06:55"))
    change_settings(patient, reminded, quiet=(dt.time(22), dt.time(7)))  # ends before the dose: wait till 07:00
    reminders.send_owed(now=at("2026-03-28T06:55"))
    owed = DoseReminder.objects.get(planned_dose=second)
    assert mail.outbox == [] and owed.status == DoseReminder.Status.PENDING and owed.send_at == at("2026-03-28T07:00")
    reminders.sweep(now=at("2026-03-28T06:59"))
    assert mail.outbox == []
    reminders.sweep(now=at("2026-03-28T07:00"))
    reminders.sweep(now=at("2026-03-28T07:01"))
    assert len(mail.outbox) == 1 and DoseReminder.objects.get(planned_dose=second).status == DoseReminder.Status.SENT


def test_the_plan_is_two_statements_and_sending_a_fixed_number_per_reminder(
    patient, clinician, django_assert_num_queries
):
    """Planning does not grow with patients (one read, one insert); sending is per reminder."""
    from tests.factories import PatientFactory

    remind_daily(patient, clinician)
    with django_assert_num_queries(2):
        assert reminders.plan(now=at("2026-03-27T06:55")) == 1
    with django_assert_num_queries(1 + PER_REMINDER):
        assert reminders.send_owed(now=at("2026-03-27T06:55")) == (1, 0)

    for _ in range(2):
        other = PatientFactory(clinic=patient.clinic, email="other@example.org")
        remind_daily(other, clinician)
    with django_assert_num_queries(2):
        assert reminders.plan(now=at("2026-03-28T06:55")) == 3
    with django_assert_num_queries(1 + 3 * PER_REMINDER):
        assert reminders.send_owed(now=at("2026-03-28T06:55")) == (3, 0)


def test_one_run_drains_a_burst_batch_after_batch_and_a_failure_is_not_retried_in_the_same_run(
    patient, clinician, monkeypatch
):
    from tests.factories import PatientFactory

    remind_daily(patient, clinician)
    for name in "bcde":
        other = PatientFactory(clinic=patient.clinic)
        remind_daily(other, clinician)
        other.email = f"{name}@example.org"
        other.save(update_fields=["email"])
    real = reminders.send_mail

    def refuse_one(subject, body, sender, to):
        if to == ["c@example.org"]:
            raise ConnectionRefusedError("mailbox unavailable")
        return real(subject, body, sender, to)

    monkeypatch.setattr(reminders, "send_mail", refuse_one)
    reminders.plan(now=at("2026-03-27T06:55"))
    assert reminders.send_owed(now=at("2026-03-27T06:55"), batch_size=2) == (4, 1)  # 3 batches, one run
    assert sorted(address for email in mail.outbox for address in email.to) == [
        ADDRESS, "b@example.org", "d@example.org", "e@example.org"
    ]  # fmt: skip
    assert DoseReminder.objects.filter(status=DoseReminder.Status.PENDING).count() == 1  # c's, for the next run
    assert reminders.send_owed(now=at("2026-03-27T06:55"), budget_seconds=0) == (0, 0)  # no time: nothing tried


def five_reminded(patient, clinician) -> None:
    from tests.factories import PatientFactory

    remind_daily(patient, clinician)
    for name in "bcde":
        other = PatientFactory(clinic=patient.clinic, email=f"{name}@example.org")
        remind_daily(other, clinician)
        other.email = f"{name}@example.org"
        other.save(update_fields=["email"])
    reminders.plan(now=at("2026-03-27T06:55"))


def test_the_send_budget_stops_mid_batch_and_the_rest_wait_for_the_next_run(patient, clinician, monkeypatch):
    five_reminded(patient, clinician)
    clock = [0.0]
    real = reminders.send_mail

    def slow_smtp(*args, **kwargs):
        clock[0] += 50  # each email takes 50 s: a struggling mail server
        return real(*args, **kwargs)

    monkeypatch.setattr(reminders, "send_mail", slow_smtp)
    # One batch of 200 holds all five; 120 s allow three (0, 50, 100 s in), not all five (250 s).
    assert reminders.send_owed(now=at("2026-03-27T06:55"), clock=lambda: clock[0]) == (3, 0)
    assert len(mail.outbox) == 3
    assert DoseReminder.objects.filter(status=DoseReminder.Status.PENDING).count() == 2
    clock[0] = 0.0
    assert reminders.send_owed(now=at("2026-03-27T06:56"), clock=lambda: clock[0]) == (2, 0)  # the next run


def test_the_tasks_soft_time_limit_stops_the_run_and_is_not_counted_as_a_failure(patient, clinician, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    five_reminded(patient, clinician)

    def out_of_time(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(reminders, "send_mail", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        reminders.send_owed(now=at("2026-03-27T06:55"))
    # The first reminder's claim rolled back; none of the five was tried past the limit.
    assert DoseReminder.objects.filter(status=DoseReminder.Status.PENDING).count() == 5


def test_an_smtp_connection_gives_up_after_email_timeout_so_a_hung_server_cannot_eat_the_budget():
    from django.conf import settings
    from django.core.mail import get_connection

    assert get_connection("django.core.mail.backends.smtp.EmailBackend").timeout == settings.EMAIL_TIMEOUT == 10


# Per reminder sent: the savepoint and its release (a transaction of its own outside tests), the
# locked read with the dose, prescription, choice, patient and settings, and the claim (which writes
# the channels it expects; one more UPDATE only when a channel failed).
# With push on, one more: the patient's live subscriptions.
PER_REMINDER = 4


def test_the_one_sweep_task_sends_the_reminders_as_the_dose_reminders_beat_calls_it(reminded):
    tasks.run_sweep_task("reminders", at("2026-03-27T06:56").isoformat())
    assert len(mail.outbox) == 1


# --- The portal's settings page -------------------------------------------------------------


@pytest.fixture
def portal(client, patient):
    return signed_in(client, give_login(patient, "pat"))


def test_the_patient_turns_a_reminder_on_with_quiet_hours(portal, patient, clinician):
    rx = course(patient, clinician, times=("08:00",))
    prn, esk = as_needed(patient, clinician), clinic_only(patient, clinician)
    page = portal.get(reverse("portal:reminders"))
    text = page.content.decode()
    assert page.status_code == 200 and f'id="reminder-{rx.pk}"' in text
    assert (
        f'id="reminder-{prn.pk}"' not in text and f'id="reminder-{esk.pk}"' not in text
    )  # no due time / at the clinic

    saved = portal.post(
        reverse("portal:reminders"),
        {f"on_{rx.pk}": "on", f"minutes_{rx.pk}": "30", "quiet_from": "22:30", "quiet_until": "07:00"},
        follow=True,
    )
    assert "Saved: your reminder settings." in saved.content.decode()
    choice = PrescriptionReminder.objects.get(prescription=rx)
    assert choice.enabled and choice.minutes_before == 30 and choice.patient == patient
    quiet = ReminderSettings.objects.get(patient=patient)
    assert (quiet.quiet_from, quiet.quiet_until) == (dt.time(22, 30), dt.time(7))
    assert 'value="22:30"' in portal.get(reverse("portal:reminders")).content.decode()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"quiet_from": "22:00"}, "Give both the start and the end of your quiet hours, or neither."),
        ({"quiet_from": "22:00", "quiet_until": "22:00"}, "Quiet hours must end at a different time"),
        ({"quiet_from": "25:00", "quiet_until": "07:00"}, "Enter a time like 22:00."),
        ({"minutes": "7"}, "Choose one of the times in the list."),
    ],
)
def test_a_setting_that_cannot_work_is_refused_by_name(portal, patient, clinician, data, words):
    rx = course(patient, clinician, times=("08:00",))
    minutes = data.pop("minutes", "15")
    response = portal.post(reverse("portal:reminders"), {f"on_{rx.pk}": "on", f"minutes_{rx.pk}": minutes, **data})
    assert response.status_code == 400
    assert words in response.content.decode()
    assert not PrescriptionReminder.objects.exists()


def test_beat_runs_the_reminder_sweep_every_minute_through_the_one_sweep_task():
    """A reminder is due to the minute the patient chose: the 5-minute sweep beat would make it up to 5 min late."""
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["dose-reminders"]
    assert entry["task"] == tasks.run_sweep_task.name
    assert entry["args"] == ("reminders",)
    assert entry["schedule"] <= 60
