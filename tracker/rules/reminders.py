"""The dose-reminder sweep: email and Web Push the patient before a planned dose, as they chose (issue 15).

Run every minute by its own beat entry, "dose-reminders" (``tracker.run_sweep`` with
"reminders", every ``REMINDER_INTERVAL_SECONDS``: 60 by default), so a reminder is at most a
minute late; not by ``run_all_sweeps`` (it runs ``rules.FLAG_SWEEPS``, every reminder-free five
minutes). Overlapping runs are safe: rows are claimed with SKIP LOCKED. Steps, each run:
1. Plan: one query reads the pending planned doses of reminded prescriptions that are
   near (due within ``MINUTES_BEFORE_MAX``) and have no reminder row yet; for each, the
   send time is the due time minus the patient's minutes, moved to the end of their quiet
   hours when it falls inside them (on the patient's wall clock, so across a daylight-saving
   change too). One insert writes the rows whose time has come; the unique planned
   dose drops any row another run wrote first. A dose whose quiet hours last past its due
   time is recorded as "quiet" and never sent.
2. Send: the owed rows, oldest first, each in its own transaction that (a) locks the row,
   skipping rows another worker holds, (b) reads the patient's settings again, since they
   may have changed after the row was queued (reminder turned off: the row goes; quiet
   hours or minutes changed: silenced, or put back to its new time), (c) marks it settled
   with a conditional UPDATE, (d) emails and pushes (services.push), (e) commits, as the
   flag outbox does (services.notifications). Delivered by neither channel after a failure
   that may pass, the mark rolls back and the next run tries again; nothing is queued on
   the broker, so a broker outage only delays the sweep, and the rows wait in the database.
   A dose logged (taken or skipped) before its reminder goes out is never reminded; one
   past its deadline (missed) is not either: the missed-dose flow takes over.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from tracker.models import DoseReminder, PlannedDose
from tracker.models.reminders import MINUTES_BEFORE_MAX
from tracker.rules.base import SweepResult
from tracker.rules.sql import ts
from tracker.services import push
from tracker.services.flag_insert import _insert as insert_rows  # the set-based INSERT both backends share
from tracker.services.languages import django_language

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
# Sending stops after this long (checked before each reminder) and the next run carries on, well
# inside the task's soft limit (CELERY_TASK_SOFT_TIME_LIMIT), so a burst ends cleanly between
# reminders rather than being cut off in the middle of one.
SEND_BUDGET_SECONDS = 120.0
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
    """Step 1: write the reminders whose time has come (1 read, 1 insert); returns rows written."""
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
        status = Status.QUIET if silenced else Status.PENDING
        rows.append((pk, patient_id, ts(send_at), status, None, "", ts(now)))
    # One statement for the lot (arrays through unnest on PostgreSQL), as the flag sweeps store
    # theirs: bulk_create spent two thirds of the plan building SQL for a morning's 11,000 rows.
    inserted = insert_rows(DoseReminder._meta.db_table, OUTBOX_COLUMNS, rows, "ON CONFLICT DO NOTHING RETURNING id")
    return len(inserted)


OUTBOX_COLUMNS = (
    ("planned_dose_id", "bigint"),
    ("patient_id", "bigint"),
    ("send_at", "timestamptz"),
    ("status", "text"),
    ("sent_at", "timestamptz"),
    ("channels", "text"),
    ("created_at", "timestamptz"),
)


def _absolute(path: str) -> str:
    return f"{getattr(settings, 'TRACKER_SITE_URL', '').rstrip('/')}{path}"


def _settle(reminder_id: int, status: str, now: dt.datetime, channels: str = "") -> bool:
    """The conditional UPDATE that claims an owed reminder (also the claim on SQLite)."""
    sent_at = now if status == Status.SENT else None
    owed = DoseReminder.objects.filter(pk=reminder_id, status=Status.PENDING)
    return bool(owed.update(status=status, sent_at=sent_at, channels=channels))


class NotDelivered(Exception):
    """No channel took the reminder and at least one failure may pass: roll back, retry."""


def _recheck(reminder: DoseReminder, now: dt.datetime) -> str | dt.datetime | None:
    """The patient's settings as they are now, inside the claim (they may have changed since
    the reminder was queued): "off" when the medicine's reminder was turned off, QUIET when
    quiet hours now silence it, a later time when it should wait (quiet hours now end later,
    or fewer minutes before), else None: send."""
    dose, patient = reminder.planned_dose, reminder.patient
    choice = getattr(dose.prescription, "reminder", None)
    if choice is None or not choice.enabled or dose.prescription.drug.in_clinic_only:
        return "off"
    quiet = getattr(patient, "reminder_settings", None)
    send_at, silenced = send_time(
        dose.due_at,
        choice.minutes_before,
        patient.zone,
        quiet.quiet_from if quiet else None,
        quiet.quiet_until if quiet else None,
    )
    if silenced:
        return Status.QUIET
    return send_at if send_at > now else None


def _message(reminder: DoseReminder) -> tuple[str, str, str]:
    """(subject, email body, push payload) in the patient's portal language."""
    dose, patient = reminder.planned_dose, reminder.patient
    local_due = dose.due_at.astimezone(patient.zone)
    path = reverse("portal:today") + f"#dose-{dose.pk}"  # the dose's card on Today: "Taken" is one tap
    context = {
        "patient": patient,
        "drug": dose.prescription.drug,
        "prescription": dose.prescription,
        "due": local_due,
        "zone": patient.timezone,
        "url": _absolute(path),
        "settings_url": _absolute(reverse("portal:reminders")),
    }
    # Templates show aware times in the current zone (the date filter converts them), so the
    # patient's zone is made current: otherwise a BST due time reads an hour early, in UTC.
    with translation.override(django_language(patient.language)), timezone.override(patient.zone):
        subject = render_to_string("portal/email/dose_reminder_subject.txt", context).strip()
        body = render_to_string("portal/email/dose_reminder.txt", context)
        payload = push.reminder_payload(due_local=local_due, zone=patient.timezone, url=path, tag=f"dose-{dose.pk}")
    return subject, body, payload


def _deliver(
    reminder: DoseReminder, address: str, subscriptions: list, push_config: push.PushConfig | None, now: dt.datetime
) -> tuple[list[str], list[push.Delivery], bool]:
    """Email (if an address) and push to every live subscription: (channels, pushes, any failure that may pass)."""
    subject, body, payload = _message(reminder)
    channels, failed = [], False
    if address:
        try:
            send_mail(subject, body, None, [address])  # EMAIL_TIMEOUT bounds a hung SMTP server
            channels.append("email")
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: stop, never count it as the email failing
        except Exception:
            failed = True
            logger.exception("reminder %s: email failed", reminder.pk)
    deliveries = []
    if push_config is not None:
        ttl = int((reminder.planned_dose.deadline - now).total_seconds())
        deliveries = [push.deliver(sub, payload, ttl=ttl, push=push_config) for sub in subscriptions]
    if any(d.outcome is push.Outcome.DELIVERED for d in deliveries):
        channels.append("push")
    failed = failed or any(d.outcome is push.Outcome.FAILED for d in deliveries)
    return channels, deliveries, failed


def _send_one(reminder_id: int, now: dt.datetime) -> bool:
    """Send one owed reminder inside the transaction that marks it sent; False if not sent.

    Sent by email (if the patient has an address) and by push to each live subscription.
    Delivered by either, it is sent, and ``channels`` says how; a channel that failed is not
    tried again, which would repeat the other. Delivered by neither with a failure that may
    pass (SMTP down, a push service's 5xx), everything rolls back and the next run tries again.
    A push service's 404/410 ends that subscription, kept even when the reminder rolls back.
    """
    deliveries: list[push.Delivery] = []
    try:
        with transaction.atomic():
            reminder = (
                DoseReminder.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related(
                    "planned_dose__prescription__drug",
                    "planned_dose__prescription__reminder",
                    "patient__user",
                    "patient__reminder_settings",
                )
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
            changed = _recheck(reminder, now)
            if changed == "off":
                # Turned off since it was queued: the owed row goes, so turning the reminder
                # back on before the dose plans it again. Nothing was sent; nothing clinical.
                DoseReminder.objects.filter(pk=reminder_id, status=Status.PENDING).delete()
                return False
            if changed == Status.QUIET:
                _settle(reminder_id, Status.QUIET, now)
                return False
            if isinstance(changed, dt.datetime):
                DoseReminder.objects.filter(pk=reminder_id, status=Status.PENDING).update(send_at=changed)
                return False
            address = patient.email or (patient.user.email if patient.user else "")
            push_config = push.config()
            subscriptions = push.live_subscriptions(patient.pk) if push_config else []
            if not address and not subscriptions:
                logger.warning(
                    "reminder %s: patient %s has no email address or push subscription", reminder_id, patient.pk
                )
                _settle(reminder_id, Status.NO_ADDRESS, now)
                return False
            expected = "+".join(name for name, used in (("email", address), ("push", subscriptions)) if used)
            if not _settle(reminder_id, Status.SENT, now, channels=expected):
                return False
            channels, deliveries, failed = _deliver(reminder, address, subscriptions, push_config, now)
            if not channels:
                if failed:
                    raise NotDelivered(reminder_id)  # rolls the mark back: owed, the next run retries
                # No address, and every subscription gone: nowhere left to send it.
                DoseReminder.objects.filter(pk=reminder_id).update(status=Status.NO_ADDRESS, sent_at=None, channels="")
                return False
            if "+".join(channels) != expected:  # one channel failed: say how it really went
                DoseReminder.objects.filter(pk=reminder_id).update(channels="+".join(channels))
            return True
    finally:
        push.record(deliveries, now)


def send_owed(
    *,
    now: dt.datetime,
    batch_size: int = BATCH_SIZE,
    budget_seconds: float = SEND_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[int, int]:
    """Step 2: (sent, failed) over the owed reminders due by ``now``, oldest first.

    Batch after batch until none is owed or ``budget_seconds`` have gone: a morning's burst
    (every 08:00 dose of a clinic at once) must go out in this run, not 200 a run. The batches
    walk forward by (send_at, id), so a reminder that failed, or was put back to a later
    time, is not picked up again in the same run; what the budget leaves waits for the next.
    The budget is checked before each reminder, not only between batches: a batch of 200 with
    slow SMTP or push services could otherwise run far past it (``clock`` is injectable for tests).
    The task's soft time limit (SoftTimeLimitExceeded) is never taken for one reminder failing.
    """
    started = clock()
    sent = failed = 0
    after: tuple[dt.datetime, int] | None = None
    while clock() - started < budget_seconds:
        owed = DoseReminder.objects.filter(status=Status.PENDING, send_at__lte=now)
        if after is not None:
            owed = owed.filter(Q(send_at__gt=after[0]) | Q(send_at=after[0], id__gt=after[1]))
        batch = list(owed.order_by("send_at", "id").values_list("send_at", "id")[:batch_size])
        for _, reminder_id in batch:
            if clock() - started >= budget_seconds:
                return sent, failed  # the rest wait for the next run, a minute away
            try:
                sent += _send_one(reminder_id, now)
            except SoftTimeLimitExceeded:
                raise  # the task is out of time: stop now; the claim rolled back, the next run sends it
            except NotDelivered:
                failed += 1
                logger.warning("reminder %s: not delivered; the next run tries again", reminder_id)
            except Exception:  # one bad row must not hold up the others
                failed += 1
                logger.exception("reminder %s: failed; the next run tries again", reminder_id)
        if len(batch) < batch_size:
            break
        after = batch[-1]
    return sent, failed


def sweep(*, now: dt.datetime, batch_size: int = BATCH_SIZE) -> SweepResult:
    """Plan, then send what is owed (see the module docstring)."""
    planned = plan(now=now)
    sent, failed = send_owed(now=now, batch_size=batch_size)
    if sent or failed:
        logger.info("reminders: %d planned, %d sent, %d failed", planned, sent, failed)
    return SweepResult(name="reminders", examined=planned + sent + failed, flags_raised=0)
