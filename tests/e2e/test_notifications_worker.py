"""End to end: urgent flags are emailed once each by a real Celery worker on Redis, even after a broker outage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from email import message_from_string
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from config.celery import app
from tests.conftest import need_service
from tests.e2e.services import WorkerProcess, redis_answers, redis_url, start_worker, wait_for
from tracker.models import Flag, FlagKind, Severity
from tracker.services.flags import build_flag, raise_flags
from tracker.tasks import send_flag_notifications_task

pytestmark = pytest.mark.services

DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: the publish is refused at once


def emails_in(folder: Path) -> list[str]:
    """Subjects of every email the worker's file backend wrote (messages end with a line of 79 dashes)."""
    chunks = (chunk for path in sorted(folder.glob("*")) for chunk in path.read_text().split("-" * 79 + "\n"))
    messages = [message_from_string(chunk) for chunk in chunks if chunk.strip()]
    return [str(make_header(decode_header(m["Subject"]))) for m in messages]


def urgent(patient, key: str, severity: int = Severity.URGENT) -> Flag:
    return build_flag(
        patient=patient,
        kind=FlagKind.SCALE_SUICIDALITY,
        severity=severity,
        dedup_key=key,
        message="PHQ-9 item 9 answered 1.",
        action="Contact the patient today.",
        raised_at=timezone.now(),
    )


@pytest.fixture
def mail_worker(transactional_db, tmp_path) -> Iterator[tuple[WorkerProcess, str, str, Path]]:
    """A worker on the shared Redis whose emails land in files the test can count."""
    need_service(connection.vendor == "postgresql", "a worker process needs the test database on PostgreSQL")
    url = redis_url()
    need_service(redis_answers(url), f"Redis does not answer at {url}")
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    queue = f"e2e-mail-{uuid.uuid4().hex[:8]}"
    worker = start_worker(
        url,
        queue,
        tmp_path / "worker.log",
        queue,
        extra_env={"DJANGO_SETTINGS_MODULE": "tests.e2e.settings_file_email", "TRACKER_TEST_EMAIL_DIR": str(mail_dir)},
    )
    try:
        assert wait_for(lambda: "ready." in worker.log(), timeout=60), worker.log()[-3000:]
        yield worker, url, queue, mail_dir
    finally:
        worker.stop()


def route_enqueue_to(monkeypatch, broker_url: str, queue: str) -> None:
    """The on-commit enqueue publishes to ``broker_url`` on the worker's private queue."""
    task = send_flag_notifications_task._get_current_object()  # shared_task gives a proxy

    def publish(*args, **kwargs):
        with app.connection_for_write(broker_url) as conn:
            return type(task).apply_async(task, *args, connection=conn, queue=queue, **kwargs)

    monkeypatch.setattr(send_flag_notifications_task, "apply_async", publish)


def run_outbox_as_beat_would(broker_url: str, queue: str) -> None:
    """Beat sends the task by name, as in CELERY_BEAT_SCHEDULE["flag-notifications"]."""
    with app.connection_for_write(broker_url) as conn:
        app.send_task("tracker.send_flag_notifications", connection=conn, queue=queue)


def test_each_urgent_flag_is_emailed_once_even_after_a_broker_outage(mail_worker, monkeypatch, patient, clinician):
    worker, url, queue, mail_dir = mail_worker

    # 1. Flags raised with the broker up: the on-commit enqueue reaches the worker.
    route_enqueue_to(monkeypatch, url, queue)
    assert raise_flags([urgent(patient, "a"), urgent(patient, "b", Severity.CRITICAL), urgent(patient, "w", 20)]) == 3
    assert wait_for(lambda: len(emails_in(mail_dir)) == 2), worker.log()[-3000:]
    # The email file is written inside the transaction that marks the flag sent, so the
    # mark becomes visible a moment after the file: wait for the commit, not just the file.
    assert wait_for(lambda: Flag.objects.filter(notified_at__isnull=False).count() == 2), worker.log()[-3000:]
    assert set(Flag.objects.filter(notified_at__isnull=False).values_list("dedup_key", flat=True)) == {"a", "b"}

    # 2. The task delivered again, and beat's minute runs: nothing is sent twice.
    for _ in range(2):
        run_outbox_as_beat_would(url, queue)
    assert wait_for(lambda: worker.log().count("succeeded") >= 3), worker.log()[-3000:]
    assert len(emails_in(mail_dir)) == 2

    # 3. The broker is down when the next flag is raised: the write still succeeds...
    route_enqueue_to(monkeypatch, DEAD_BROKER, queue)
    assert raise_flags([urgent(patient, "c")]) == 1
    assert Flag.objects.get(dedup_key="c").notified_at is None
    assert len(emails_in(mail_dir)) == 2

    # ...and once the broker is back, beat's run sends it: once.
    run_outbox_as_beat_would(url, queue)
    assert wait_for(lambda: len(emails_in(mail_dir)) == 3), worker.log()[-3000:]
    run_outbox_as_beat_would(url, queue)
    assert wait_for(lambda: worker.log().count("succeeded") >= 5), worker.log()[-3000:]
    subjects = emails_in(mail_dir)
    assert len(subjects) == 3
    assert sum("Critical flag" in s for s in subjects) == 1
    assert all(patient.record_number in s for s in subjects)
    assert Flag.objects.filter(severity__gte=Severity.URGENT, notified_at__isnull=True).count() == 0
