"""Emailing clinicians about flags: an outbox on ``Flag.notified_at``, and a daily digest.

Urgent and critical flags are the outbox: a flag with ``notified_at`` NULL still owes an
email. Each is sent in its own transaction that (1) locks the row, skipping rows another
worker holds, (2) marks it sent with a conditional UPDATE, (3) sends, and (4) commits.
A crash or a failed send before the commit rolls the mark back, so the email is never
lost (healthchecks issue 212); a crash between the send and the commit can repeat it
once, which is the price of at-least-once delivery. The lock and the conditional UPDATE
mean two workers, or a task delivered twice, never send the same flag twice.

The task runs on commit after a flag is raised and every minute from beat, so an email
that could not be queued (broker down) goes out once the worker runs again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse

from tracker.models import Clinician, DigestDelivery, Flag, Severity

logger = logging.getLogger(__name__)

NOTIFY_FROM = Severity.URGENT
# Flags older than this are not emailed: switching notifications on must not mail a
# clinic's whole backlog. They stay on the worklist.
NOTIFY_MAX_AGE = dt.timedelta(days=7)
BATCH_SIZE = 100
# A digest lists the oldest open warnings up to this many and counts the rest: an email
# is a reminder to open the worklist, not a copy of it.
DIGEST_MAX_LISTED = 50


@dataclass(frozen=True)
class SendResult:
    sent: int
    failed: int


def enqueue_notifications() -> None:
    """Queue the outbox task; a broker outage is logged, never raised into the write.

    Called by ``transaction.on_commit`` after flags are raised. If the broker is down the
    flag is already committed with ``notified_at`` NULL, and beat's run picks it up.
    """
    from tracker.tasks import send_flag_notifications_task  # the tasks module imports services

    try:
        send_flag_notifications_task.apply_async(retry_policy={"max_retries": 1, "interval_start": 0.2})
    except Exception:  # any broker or connection error: the write must not fail
        logger.warning("could not queue flag notifications; beat will send them", exc_info=True)


def pending_notifications(*, now: dt.datetime) -> Iterable[int]:
    """Ids of unresolved urgent/critical flags not yet emailed, most severe and oldest first.

    A problem that escalated to urgent (three misses in a row) owes its email from when it
    escalated, however old the problem is.
    """
    return (
        Flag.objects.annotate(owed_since=Coalesce("escalated_at", "created_at"))
        .filter(notified_at__isnull=True, severity__gte=NOTIFY_FROM, owed_since__gte=now - NOTIFY_MAX_AGE)
        .exclude(status=Flag.Status.RESOLVED)
        .order_by("-severity", "raised_at", "id")
        .values_list("id", flat=True)[:BATCH_SIZE]
    )


def recipients_for(flag: Flag) -> list[str]:
    """The patient's responsible clinician; without one (or no address), the clinic's prescribers."""
    responsible = flag.patient.responsible_clinician
    if responsible is not None and responsible.is_active and responsible.user.is_active and responsible.user.email:
        return [responsible.user.email]
    prescribers = (
        Clinician.objects.filter(
            clinic_id=flag.patient.clinic_id, role=Clinician.Role.PRESCRIBER, is_active=True, user__is_active=True
        )
        .exclude(user__email="")
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )
    return list(prescribers)


def _absolute(path: str) -> str:
    return f"{getattr(settings, 'TRACKER_SITE_URL', '').rstrip('/')}{path}"


def _send_one(flag_id: int, now: dt.datetime) -> bool:
    """Send one flag's email inside the transaction that marks it sent; False if not ours."""
    with transaction.atomic():
        flag = (
            Flag.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("patient__responsible_clinician__user")
            .filter(pk=flag_id, notified_at__isnull=True)
            .first()
        )
        if flag is None:
            return False  # sent meanwhile, or another worker holds it
        # The conditional UPDATE is the claim on databases without row locks (SQLite).
        if not Flag.objects.filter(pk=flag_id, notified_at__isnull=True).update(notified_at=now):
            return False
        to = recipients_for(flag)
        if not to:
            # Nobody to email; the flag is on the worklist. Marked so it is not retried forever.
            logger.warning("flag %s: no clinician with an email address to notify", flag_id)
            return False
        context = {
            "flag": flag,
            "patient": flag.patient,
            "url": _absolute(reverse("admin:tracker_flag_change", args=[flag.pk])),
        }
        subject = render_to_string("email/flag_notification_subject.txt", context).strip()
        body = render_to_string("email/flag_notification.txt", context)
        # Raising here rolls the mark back: the next run tries again.
        send_mail(subject, body, None, to)
        return True


def send_flag_notifications(*, now: dt.datetime) -> SendResult:
    """Email every pending urgent/critical flag once (see the module docstring)."""
    sent = failed = 0
    for flag_id in list(pending_notifications(now=now)):
        try:
            sent += _send_one(flag_id, now)
        except Exception:  # one bad address or SMTP hiccup must not hold up the others
            failed += 1
            logger.exception("flag %s: notification failed; will retry", flag_id)
    return SendResult(sent=sent, failed=failed)


@dataclass
class Digest:
    """One clinician's open warnings: how many, and the oldest few to list."""

    count: int = 0
    flags: list[Flag] = field(default_factory=list)

    def add(self, flag: Flag) -> None:
        self.count += 1
        if len(self.flags) < DIGEST_MAX_LISTED:
            self.flags.append(flag)

    @property
    def more(self) -> int:
        return self.count - len(self.flags)


def open_warnings_by_recipient() -> dict[str, Digest]:
    """Unresolved warning flags grouped by the address that should read them (2 queries).

    The flags are streamed oldest first and each digest keeps only its first
    ``DIGEST_MAX_LISTED``, so a clinic with a large backlog cannot exhaust the worker's memory.
    """
    flags = (
        Flag.objects.filter(severity=Severity.WARNING)
        .exclude(status=Flag.Status.RESOLVED)
        .select_related("patient__responsible_clinician__user")
        .order_by("raised_at", "id")
    )
    prescribers: dict[int, list[str]] = defaultdict(list)
    rows = (
        Clinician.objects.filter(role=Clinician.Role.PRESCRIBER, is_active=True, user__is_active=True)
        .exclude(user__email="")
        .values_list("clinic_id", "user__email")
    )
    for clinic_id, email in rows:
        prescribers[clinic_id].append(email)
    grouped: dict[str, Digest] = defaultdict(Digest)
    for flag in flags.iterator(chunk_size=2000):
        responsible = flag.patient.responsible_clinician
        if responsible is not None and responsible.is_active and responsible.user.is_active and responsible.user.email:
            grouped[responsible.user.email].add(flag)
        else:
            for email in prescribers.get(flag.patient.clinic_id, []):
                grouped[email].add(flag)
    return dict(grouped)


def send_warning_digest(*, now: dt.datetime) -> int:
    """One email per clinician listing their patients' open warnings; returns emails sent.

    Warnings are not worth an email each (notification fatigue); once a day they are.
    Each address gets one digest per day however often the task runs (``DigestDelivery``).
    """
    sent = 0
    worklist_url = _absolute(reverse("admin:index"))
    day = now.date()
    for email, digest in sorted(open_warnings_by_recipient().items()):
        context = {
            "flags": digest.flags,
            "count": digest.count,
            "more": digest.more,
            "day": day,
            "url": worklist_url,
        }
        try:
            sent += _send_digest(email, day, digest.count, context)
        except Exception:
            logger.exception("warning digest to %s failed; the next run tries again", email)
    return sent


def _send_digest(email: str, day: dt.date, count: int, context: dict) -> bool:
    """Record and send one digest in one transaction; False if it went out already today."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                DigestDelivery.objects.create(recipient=email, day=day, warnings=count)
        except IntegrityError:  # sent today already, or being sent by another worker that committed
            return False
        subject = render_to_string("email/warning_digest_subject.txt", context).strip()
        body = render_to_string("email/warning_digest.txt", context)
        send_mail(subject, body, None, [email])  # raising rolls the row back
        return True
