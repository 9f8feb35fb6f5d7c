"""The flag notification outbox (Flag.notified_at) and the daily warning digest."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone
from kombu.exceptions import OperationalError

from tests import factories
from tests.dosing import at
from tracker.models import DigestDelivery, Flag, FlagKind, Severity
from tracker.services import notifications
from tracker.services.flags import build_flag, raise_flags
from tracker.tasks import send_flag_notifications_task, send_warning_digest_task


def flag_for(patient, severity: int, key: str, **fields) -> Flag:
    return build_flag(
        patient=patient,
        kind=fields.pop("kind", FlagKind.SCALE_SUICIDALITY),
        severity=severity,
        dedup_key=key,
        message="PHQ-9 item 9 answered 2.",
        action="Contact the patient today.",
        raised_at=fields.pop("raised_at", timezone.now()),
    )


@pytest.fixture
def queued(monkeypatch) -> list[dict]:
    """Record what would go to the broker (the outside world) instead of sending it."""
    calls: list[dict] = []
    monkeypatch.setattr(send_flag_notifications_task, "apply_async", lambda *a, **kw: calls.append(kw))
    return calls


class TestEnqueueOnCommit:
    def test_an_urgent_flag_queues_the_task_after_commit(self, patient, queued, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            raise_flags([flag_for(patient, Severity.URGENT, "k1")])
            assert queued == []  # nothing is queued before the commit
        assert len(callbacks) == 1
        assert len(queued) == 1

    def test_a_warning_or_a_duplicate_queues_nothing(self, patient, queued, django_capture_on_commit_callbacks):
        raise_flags([flag_for(patient, Severity.URGENT, "dup")])
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            raise_flags([flag_for(patient, Severity.WARNING, "w1")])
            raise_flags([flag_for(patient, Severity.URGENT, "dup")])  # already open: not inserted
        assert callbacks == []

    def test_a_broker_outage_never_fails_the_write(
        self, patient, monkeypatch, caplog, django_capture_on_commit_callbacks
    ):
        def broker_down(*args, **kwargs):
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        monkeypatch.setattr(send_flag_notifications_task, "apply_async", broker_down)
        with caplog.at_level(logging.WARNING, logger="tracker"), django_capture_on_commit_callbacks(execute=True):
            assert raise_flags([flag_for(patient, Severity.CRITICAL, "k2")]) == 1
        assert Flag.objects.get(dedup_key="k2").notified_at is None  # still owed: beat will send it
        assert "could not queue flag notifications" in caplog.text


class TestOutbox:
    def test_urgent_and_critical_are_emailed_once_to_the_responsible_clinician(self, patient, clinician):
        raise_flags(
            [
                flag_for(patient, Severity.CRITICAL, "c"),
                flag_for(patient, Severity.URGENT, "u"),
                flag_for(patient, Severity.WARNING, "w"),
            ]
        )
        now = timezone.now()
        assert notifications.send_flag_notifications(now=now) == notifications.SendResult(sent=2, failed=0)
        assert [m.to for m in mail.outbox] == [[clinician.user.email]] * 2
        assert "Critical flag" in mail.outbox[0].subject  # most severe first
        assert set(Flag.objects.filter(notified_at=now).values_list("dedup_key", flat=True)) == {"c", "u"}

        # Beat's next run, or the same task delivered twice, sends nothing more.
        assert notifications.send_flag_notifications(now=now).sent == 0
        assert len(mail.outbox) == 2

    def test_the_email_names_the_record_not_the_patient(self, patient):
        raise_flags([flag_for(patient, Severity.URGENT, "u")])
        notifications.send_flag_notifications(now=timezone.now())
        (message,) = mail.outbox
        assert patient.record_number in message.subject
        assert patient.family_name not in message.subject + message.body
        assert "PHQ-9 item 9" not in message.body  # clinical details stay in the tracker
        assert f"/admin/tracker/flag/{Flag.objects.get().pk}/change/" in message.body

    def test_without_a_responsible_clinician_the_clinics_prescribers_are_emailed(self, clinic, other_clinic):
        patient = factories.PatientFactory(clinic=clinic)
        first = factories.ClinicianFactory(clinic=clinic, user__email="a@example.org")
        second = factories.ClinicianFactory(clinic=clinic, user__email="b@example.org")
        factories.ClinicianFactory(clinic=clinic, role="nurse", user__email="nurse@example.org")
        factories.ClinicianFactory(clinic=clinic, is_active=False, user__email="gone@example.org")
        factories.ClinicianFactory(clinic=other_clinic, user__email="elsewhere@example.org")
        raise_flags([flag_for(patient, Severity.URGENT, "u")])
        notifications.send_flag_notifications(now=timezone.now())
        assert mail.outbox[0].to == [first.user.email, second.user.email]

    def test_a_deactivated_responsible_clinician_falls_back_to_the_prescribers(self, clinic):
        left = factories.ClinicianFactory(clinic=clinic, user__email="left@example.org", user__is_active=False)
        on_duty = factories.ClinicianFactory(clinic=clinic, user__email="duty@example.org")
        patient = factories.PatientFactory(clinic=clinic, responsible_clinician=left)
        raise_flags([flag_for(patient, Severity.URGENT, "u")])
        notifications.send_flag_notifications(now=timezone.now())
        assert mail.outbox[0].to == [on_duty.user.email]

    def test_a_failed_send_is_retried_not_lost(self, patient, monkeypatch):
        raise_flags([flag_for(patient, Severity.URGENT, "u")])

        def smtp_down(*args, **kwargs):
            raise ConnectionRefusedError("SMTP server down")

        monkeypatch.setattr(notifications, "send_mail", smtp_down)
        assert notifications.send_flag_notifications(now=timezone.now()) == notifications.SendResult(0, 1)
        assert Flag.objects.get().notified_at is None  # the mark was rolled back with the failure

        monkeypatch.undo()
        assert notifications.send_flag_notifications(now=timezone.now()).sent == 1
        assert len(mail.outbox) == 1

    def test_resolved_and_old_flags_are_not_emailed(self, patient):
        raise_flags([flag_for(patient, Severity.URGENT, "resolved"), flag_for(patient, Severity.URGENT, "old")])
        Flag.objects.filter(dedup_key="resolved").update(status=Flag.Status.RESOLVED, resolved_at=timezone.now())
        Flag.objects.filter(dedup_key="old").update(created_at=timezone.now() - dt.timedelta(days=8))
        assert notifications.send_flag_notifications(now=timezone.now()).sent == 0
        assert mail.outbox == []

    def test_task_runs_the_service(self, patient):
        raise_flags([flag_for(patient, Severity.URGENT, "u")])
        assert send_flag_notifications_task.apply().get() == {"sent": 1, "failed": 0}


class TestDigest:
    def test_one_email_per_clinician_with_their_open_warnings(self, clinic, patient, clinician, other_patient):
        second = factories.PatientFactory(clinic=clinic, responsible_clinician=clinician)
        raise_flags(
            [
                flag_for(patient, Severity.WARNING, "w1", kind=FlagKind.SE_BURDEN),
                flag_for(second, Severity.WARNING, "w2", kind=FlagKind.DOSE_MISSED),
                flag_for(patient, Severity.URGENT, "u1"),  # urgent: emailed on its own, not in the digest
                flag_for(other_patient, Severity.WARNING, "w3"),
                flag_for(patient, Severity.WARNING, "closed"),
            ]
        )
        Flag.objects.filter(dedup_key="closed").update(status=Flag.Status.RESOLVED, resolved_at=timezone.now())

        assert send_warning_digest_task.apply(args=["2026-06-02T07:00:00+00:00"]).get() == 2
        by_recipient = {m.to[0]: m for m in mail.outbox}
        mine = by_recipient[clinician.user.email]
        assert mine.subject == "[Tracker] 2 open warnings on 2026-06-02"
        assert patient.record_number in mine.body and second.record_number in mine.body
        assert other_patient.record_number not in mine.body

    def test_a_long_backlog_lists_the_oldest_and_counts_the_rest(self, patient, clinician, settings):
        settings.TRACKER_SITE_URL = "https://tracker.example.org"
        start = timezone.now() - dt.timedelta(days=30)
        warnings = [flag_for(patient, Severity.WARNING, f"w{i}") for i in range(notifications.DIGEST_MAX_LISTED + 3)]
        raise_flags([dataclasses.replace(w, raised_at=start + dt.timedelta(hours=i)) for i, w in enumerate(warnings)])

        assert notifications.send_warning_digest(now=timezone.now()) == 1
        (email,) = mail.outbox
        assert email.subject.startswith(f"[Tracker] {notifications.DIGEST_MAX_LISTED + 3} open warnings")
        listed = [line for line in email.body.splitlines() if line.startswith("- ")]
        assert len(listed) == notifications.DIGEST_MAX_LISTED + 1
        assert listed[0].startswith(f"- {start:%Y-%m-%d}")  # oldest first
        assert listed[-1] == "- and 3 more"
        assert "https://tracker.example.org/" in email.body

    def test_a_second_run_on_the_same_day_sends_nothing(self, patient, clinician):
        raise_flags([flag_for(patient, Severity.WARNING, "w1")])
        first = notifications.send_warning_digest(now=at("2026-06-02T07:00"))
        again = notifications.send_warning_digest(now=at("2026-06-02T07:05"))  # a second beat, or a redelivery
        next_day = notifications.send_warning_digest(now=at("2026-06-03T07:00"))
        assert (first, again, next_day) == (1, 0, 1)
        assert len(mail.outbox) == 2
        assert DigestDelivery.objects.filter(recipient=clinician.user.email).count() == 2

    def test_a_failed_send_is_tried_again_by_the_next_run(self, patient, clinician, settings):
        raise_flags([flag_for(patient, Severity.WARNING, "w1")])
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 1  # nothing listens
        assert notifications.send_warning_digest(now=at("2026-06-02T07:00")) == 0
        assert not DigestDelivery.objects.exists()
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        assert notifications.send_warning_digest(now=at("2026-06-02T07:05")) == 1
        assert len(mail.outbox) == 1


def test_beat_runs_the_outbox_every_minute_and_the_digest_daily():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["flag-notifications"] == {"task": "tracker.send_flag_notifications", "schedule": 60}
    assert schedule["warning-digest"]["task"] == "tracker.send_warning_digest"
    assert schedule["warning-digest"]["schedule"].hour == {7}
