"""Celery tasks: thin wrappers that read the clock and call one domain function.

Tasks are idempotent (the database decides what is new), so they run with ``acks_late``
and are retried with backoff when the database is briefly unreachable.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from tracker import rules, scheduling

logger = logging.getLogger(__name__)

RETRY = {
    "autoretry_for": (DatabaseError,),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 5,
}


def _instant(at: str | None) -> dt.datetime:
    return dt.datetime.fromisoformat(at) if at else timezone.now()


@shared_task(name="tracker.run_sweep", **RETRY)
def run_sweep_task(name: str, at: str | None = None, batch_size: int | None = None) -> dict:
    """Run one sweep (see ``tracker.rules.SWEEPS``) judging ``at`` or now.

    ``batch_size`` overrides the sweep's rows per transaction (smaller batches commit
    progress more often; the fault tests use it to interrupt a sweep part-way).
    """
    options = {"batch_size": batch_size} if batch_size else {}
    result = rules.SWEEPS[name](now=_instant(at), **options)
    logger.info("sweep %s examined %d, raised %d flags", result.name, result.examined, result.flags_raised)
    return {"examined": result.examined, "flags_raised": result.flags_raised}


class SweepsFailed(RuntimeError):
    """Some sweeps raised; the others ran. Names the failed ones."""


@shared_task(name="tracker.run_all_sweeps", **RETRY)
def run_all_sweeps_task(at: str | None = None) -> dict[str, dict | str]:
    """Beat entry point: every flag sweep (``rules.FLAG_SWEEPS``), each judging the same instant, each on its own.

    A sweep that raises is logged and the next one still runs: a bug in one family of
    flags must not leave missed doses or item-9 answers unflagged. Each sweep commits its
    own batches, so the others' work stands. Afterwards the task fails if any sweep did:
    with a database error it is retried whole (every sweep is idempotent); otherwise it
    raises ``SweepsFailed`` naming them, so the failure shows in the worker's log.
    """
    instant = _instant(at).isoformat()
    outcome: dict[str, dict | str] = {}
    errors: dict[str, Exception] = {}
    for name in rules.FLAG_SWEEPS:  # not the reminders: their own beat runs them every minute
        try:
            outcome[name] = run_sweep_task(name, instant)
        except Exception as error:  # isolate each sweep; reported below
            logger.exception("sweep %s failed; the other sweeps still run", name)
            errors[name] = error
            outcome[name] = f"failed: {type(error).__name__}"
    if errors:
        if all(isinstance(error, DatabaseError) for error in errors.values()):
            raise next(iter(errors.values()))
        raise SweepsFailed(f"sweeps failed: {', '.join(errors)}") from next(iter(errors.values()))
    return outcome


@shared_task(name="tracker.extend_horizon", **RETRY)
def extend_horizon_task(at: str | None = None) -> int:
    created = scheduling.extend_horizon(now=_instant(at))
    logger.info("horizon extension created %d planned doses", created)
    return created


@shared_task(name="tracker.send_flag_notifications", **RETRY)
def send_flag_notifications_task(at: str | None = None) -> dict:
    """Email pending urgent/critical flags (the outbox); on commit after a raise, and every minute."""
    from tracker.services.notifications import send_flag_notifications

    result = send_flag_notifications(now=_instant(at))
    if result.sent or result.failed:
        logger.info("flag notifications: %d sent, %d failed", result.sent, result.failed)
    return {"sent": result.sent, "failed": result.failed}


@shared_task(name="tracker.send_warning_digest", **RETRY)
def send_warning_digest_task(at: str | None = None) -> int:
    """Daily: each clinician's open warnings in one email."""
    from tracker.services.notifications import send_warning_digest

    sent = send_warning_digest(now=_instant(at))
    logger.info("warning digest: %d emails sent", sent)
    return sent
