"""The dose-reminder sweep: email the patient before a planned dose, as they chose (issue 15).

Steps, each run (from ``run_all_sweeps`` every minute):
1. Plan: one query reads the pending planned doses of reminded prescriptions that are
   near (due within ``MINUTES_BEFORE_MAX``) and have no reminder row yet; for each, the
   send time is the due time minus the patient's minutes, moved to the end of their quiet
   hours when it falls inside them (on the patient's wall clock, so across a daylight-saving
   change too). One bulk insert writes the rows whose time has come; the unique planned
   dose drops any row another run wrote first. A dose whose quiet hours last past its due
   time is recorded as "quiet" and never emailed.
2. Send: the owed rows, oldest first, each in its own transaction that (a) locks the row,
   skipping rows another worker holds, (b) marks it settled with a conditional UPDATE,
   (c) emails, (d) commits, as the flag outbox does (services.notifications). A failed
   send rolls the mark back and the next run tries again; nothing is queued on the broker,
   so a broker outage only delays the sweep, and the rows wait in the database.
   A dose logged (taken or skipped) before its reminder goes out is never reminded; one
   past its deadline (missed) is not either: the missed-dose flow takes over.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from tracker.models import DoseReminder, PlannedDose
from tracker.models.reminders import MINUTES_BEFORE_MAX
from tracker.rules.base import SweepResult

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
Status = DoseReminder.Status


def in_quiet_hours(wall: dt.time, quiet_from: dt.time | None, quiet_until: dt.time | None) -> bool:
    """Whether a wall-clock time is inside quiet hours (which may run past midnight)."""
    if quiet_from is None or quiet_until is None:
        return False
    if quiet_from < quiet_until:
        return quiet_from <= wall < quiet_until
    return wall >= quiet_from or wall < quiet_until


def _wall_to_utc(day: dt.date, wall: dt.time, zone: ZoneInfo) -> dt.datetime:
    """That wall-clock time on that local day, in UTC; a time skipped by the spring change
    (01:30 in London) reads as the moment after the gap, as the clocks on the wall do."""
    local = dt.datetime.combine(day, wall, tzinfo=zone)
    return local.astimezone(dt.UTC).astimezone(zone).astimezone(dt.UTC)


def send_time(
    due_at: dt.datetime,
    minutes_before: int,
    zone: ZoneInfo,
    quiet_from: dt.time | None,
    quiet_until: dt.time | None,
) -> tuple[dt.datetime, bool]:
    """When to remind of a dose due at ``due_at``, and whether quiet hours silence it.

    Quiet hours are on the patient's wall clock: 22:00-07:00 in London ends at 07:00 GMT in
    winter and 07:00 BST (06:00 UTC) in summer, so the end is computed in the zone each time,
    never as a fixed UTC offset.
    """
    send_at = due_at - dt.timedelta(minutes=minutes_before)
    local = send_at.astimezone(zone)
    if not in_quiet_hours(local.time(), quiet_from, quiet_until):
        return send_at, False
    assert quiet_until is not None  # in_quiet_hours says both are set
    end_day = local.date() if local.time() < quiet_until else local.date() + dt.timedelta(days=1)
    quiet_end = _wall_to_utc(end_day, quiet_until, zone)
    if quiet_end <= due_at:
        return quiet_end, False  # the quiet hours end before the dose is due: remind then
    return send_at, True


def plan(*, now: dt.datetime) -> int:
    """Step 1: write the reminders whose time has come (1 read, 1 bulk insert); returns rows offered."""
    candidates = (
        PlannedDose.objects.filter(
            status=PlannedDose.Status.PENDING,
            deadline__gte=now,
            due_at__lte=now + dt.timedelta(minutes=MINUTES_BEFORE_MAX),
            prescription__reminder__enabled=True,
            prescription__entered_in_error_at__isnull=True,
            reminder__isnull=True,
        )
        # Clinic-only medicines are given by the care team at the clinic: nothing to log.
        .exclude(prescription__drug__in_clinic_only=True)
        .values_list(
            "pk",
            "patient_id",
            "due_at",
            "prescription__reminder__minutes_before",
            "patient__timezone",
            "patient__reminder_settings__quiet_from",
            "patient__reminder_settings__quiet_until",
        )
    )
    rows = []
    for pk, patient_id, due_at, minutes, zone, quiet_from, quiet_until in candidates:
        send_at, silenced = send_time(due_at, minutes, ZoneInfo(zone), quiet_from, quiet_until)
        if send_at > now:
            continue  # not yet: a later run plans it, with the settings as they are then
        rows.append(
            DoseReminder(
                planned_dose_id=pk,
                patient_id=patient_id,
                send_at=send_at,
                status=Status.QUIET if silenced else Status.PENDING,
                created_at=now,
            )
        )
    DoseReminder.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _absolute(path: str) -> str:
    return f"{getattr(settings, 'TRACKER_SITE_URL', '').rstrip('/')}{path}"


def _settle(reminder_id: int, status: str, now: dt.datetime) -> bool:
    """The conditional UPDATE that claims an owed reminder (also the claim on SQLite)."""
    sent_at = now if status == Status.SENT else None
    return bool(
        DoseReminder.objects.filter(pk=reminder_id, status=Status.PENDING).update(status=status, sent_at=sent_at)
    )


def _send_one(reminder_id: int, now: dt.datetime) -> bool:
    """Email one owed reminder inside the transaction that marks it sent; False if not emailed."""
    with transaction.atomic():
        reminder = (
            DoseReminder.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("planned_dose__prescription__drug", "patient__user")
            .filter(pk=reminder_id, status=Status.PENDING)
            .first()
        )
        if reminder is None:
            return False  # settled meanwhile, or another worker holds it
        dose, patient = reminder.planned_dose, reminder.patient
        if dose.status in (PlannedDose.Status.TAKEN, PlannedDose.Status.SKIPPED):
            _settle(reminder_id, Status.LOGGED, now)
            return False
        if dose.status != PlannedDose.Status.PENDING or dose.deadline < now:
            _settle(reminder_id, Status.EXPIRED, now)
            return False
        address = patient.email or (patient.user.email if patient.user else "")
        if not address:
            logger.warning("reminder %s: patient %s has no email address", reminder_id, patient.pk)
            _settle(reminder_id, Status.NO_ADDRESS, now)
            return False
        if not _settle(reminder_id, Status.SENT, now):
            return False
        local_due = dose.due_at.astimezone(patient.zone)
        context = {
            "patient": patient,
            "drug": dose.prescription.drug,
            "prescription": dose.prescription,
            "due": local_due,
            "zone": patient.timezone,
            # Straight to the dose's card on Today, where "Taken" is one tap.
            "url": _absolute(reverse("portal:today")) + f"#dose-{dose.pk}",
            "settings_url": _absolute(reverse("portal:reminders")),
        }
        subject = render_to_string("portal/email/dose_reminder_subject.txt", context).strip()
        body = render_to_string("portal/email/dose_reminder.txt", context)
        send_mail(subject, body, None, [address])  # raising rolls the mark back: the next run retries
        return True


def send_owed(*, now: dt.datetime, batch_size: int = BATCH_SIZE) -> tuple[int, int]:
    """Step 2: (sent, failed) over the owed reminders due by ``now``, oldest first."""
    owed = list(
        DoseReminder.objects.filter(status=Status.PENDING, send_at__lte=now)
        .order_by("send_at", "id")
        .values_list("id", flat=True)[:batch_size]
    )
    sent = failed = 0
    for reminder_id in owed:
        try:
            sent += _send_one(reminder_id, now)
        except Exception:  # one bad address or an SMTP hiccup must not hold up the others
            failed += 1
            logger.exception("reminder %s: email failed; the next run tries again", reminder_id)
    return sent, failed


def sweep(*, now: dt.datetime, batch_size: int = BATCH_SIZE) -> SweepResult:
    """Plan, then send what is owed (see the module docstring)."""
    planned = plan(now=now)
    sent, failed = send_owed(now=now, batch_size=batch_size)
    if sent or failed:
        logger.info("reminders: %d planned, %d sent, %d failed", planned, sent, failed)
    return SweepResult(name="reminders", examined=planned + sent + failed, flags_raised=0)
