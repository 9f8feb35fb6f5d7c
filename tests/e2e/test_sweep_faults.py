"""Sweeps survive their parts failing: a worker SIGKILLed mid-sweep, two workers at once,
and a day without beat. Each test starts its own redis-server and worker processes."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection

from config.celery import app
from tests.conftest import need_service
from tests.e2e.services import PrivateRedis, start_worker, wait_for
from tests.factories import DoseScheduleFactory, PatientFactory, PrescriptionFactory
from tracker.models import Flag, FlagFact, FlagKind, PlannedDose
from tracker.services.doses import MISSED_KINDS, missed_fact_key
from tracker.tasks import run_sweep_task

pytestmark = pytest.mark.services
UTC = dt.UTC
NOW = dt.datetime(2026, 6, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def private_redis(transactional_db, tmp_path):
    need_service(connection.vendor == "postgresql", "worker processes need the test database on PostgreSQL")
    redis = PrivateRedis(folder=tmp_path)
    redis.start()
    yield redis
    redis.stop()


def overdue_plan(clinic, patients: int, doses_each: int, start: dt.datetime) -> set[str]:
    """Patients with hourly planned doses from ``start``; returns the flag keys a full sweep at NOW must raise."""
    rows = []
    for i in range(patients):
        patient = PatientFactory(clinic=clinic, record_number=f"F-{i}")
        schedule = DoseScheduleFactory(prescription=PrescriptionFactory(patient=patient))
        for n in range(doses_each):
            due = start + dt.timedelta(hours=n)
            rows.append(
                PlannedDose(
                    patient=patient,
                    prescription=schedule.prescription,
                    schedule=schedule,
                    due_at=due,
                    deadline=due + dt.timedelta(minutes=30),
                    local_date=due.date(),
                )
            )
    PlannedDose.objects.bulk_create(rows, batch_size=5000)
    overdue = PlannedDose.objects.filter(deadline__lte=NOW).values_list("id", flat=True)
    return {missed_fact_key(pk) for pk in overdue}


def missed_flag_keys() -> list[str]:
    """The missed doses held as facts, across every problem (each must appear once)."""
    return list(FlagFact.objects.filter(flag__kind__in=MISSED_KINDS).values_list("key", flat=True))


def enqueue(broker_url: str, queue: str, at: dt.datetime, batch_size: int) -> None:
    with app.connection_for_write(broker_url) as conn:
        run_sweep_task.apply_async(("missed_doses", at.isoformat(), batch_size), connection=conn, queue=queue)


def assert_flags_complete(expected: set[str], patients: int) -> None:
    keys = missed_flag_keys()
    assert len(keys) == len(set(keys)), "a missed dose was flagged twice"
    assert set(keys) == expected
    # Every patient missed every dose, so each has exactly one problem, escalated to urgent.
    assert not Flag.objects.filter(kind=FlagKind.DOSE_MISSED).exists()
    escalations = Flag.objects.filter(kind=FlagKind.DOSE_MISSED_REPEATED)
    assert escalations.count() == patients == escalations.values("patient").distinct().count()
    assert sum(escalations.values_list("occurrences", flat=True)) == len(expected)
    assert not PlannedDose.objects.filter(status=PlannedDose.Status.PENDING, deadline__lte=NOW).exists()


def test_worker_killed_mid_sweep_then_next_sweep_completes_the_work(private_redis, clinic, tmp_path):
    expected = overdue_plan(clinic, patients=40, doses_each=500, start=NOW - dt.timedelta(days=21))
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    first = start_worker(private_redis.url, queue, tmp_path / "first.log", "first")
    try:
        enqueue(private_redis.url, queue, NOW, batch_size=200)
        missed = PlannedDose.objects.filter(status=PlannedDose.Status.MISSED)
        assert wait_for(lambda: missed.count() >= 1000, timeout=60, interval=0.02), first.log()[-2000:]
        first.kill()  # SIGKILL in the middle of the sweep
    finally:
        first.stop()
    interrupted_at = missed.count()
    assert 0 < interrupted_at < len(expected), "the sweep was not interrupted part-way"
    # Every claimed batch committed with its flags, so nothing claimed lacks its flag.
    assert len(missed_flag_keys()) == interrupted_at

    second = start_worker(private_redis.url, queue, tmp_path / "second.log", "second")
    try:
        enqueue(private_redis.url, queue, NOW, batch_size=200)  # beat's next run
        pending = PlannedDose.objects.filter(status=PlannedDose.Status.PENDING, deadline__lte=NOW)
        assert wait_for(lambda: not pending.exists(), timeout=120), second.log()[-2000:]
        assert wait_for(lambda: "succeeded" in second.log(), timeout=30), second.log()[-2000:]
    finally:
        second.stop()
    assert_flags_complete(expected, patients=40)


def test_two_workers_sweeping_at_once_raise_each_flag_once(private_redis, clinic, tmp_path):
    expected = overdue_plan(clinic, patients=30, doses_each=300, start=NOW - dt.timedelta(days=12))
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    workers = [start_worker(private_redis.url, queue, tmp_path / f"w{i}.log", f"w{i}") for i in range(2)]
    try:
        assert wait_for(lambda: all("ready" in w.log() for w in workers), timeout=60)
        for _ in range(2):
            enqueue(private_redis.url, queue, NOW, batch_size=250)
        assert wait_for(lambda: all("succeeded" in w.log() for w in workers), timeout=120), [
            w.log()[-1500:] for w in workers
        ]
    finally:
        for w in workers:
            w.stop()
    for w in workers:
        assert "deadlock" not in w.log().lower()
        assert "Traceback" not in w.log()
    assert_flags_complete(expected, patients=30)


def test_a_day_without_beat_is_caught_up_in_one_run(private_redis, clinic, tmp_path):
    expected = overdue_plan(clinic, patients=10, doses_each=48, start=NOW - dt.timedelta(days=2))
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    worker = start_worker(private_redis.url, queue, tmp_path / "w.log", "catchup")
    try:
        enqueue(
            private_redis.url, queue, NOW - dt.timedelta(days=1), batch_size=5000
        )  # the last run before beat stopped
        assert wait_for(lambda: worker.log().count("succeeded") >= 1, timeout=60), worker.log()[-2000:]
        before = len(missed_flag_keys())
        enqueue(private_redis.url, queue, NOW, batch_size=5000)  # one run, a day later
        assert wait_for(lambda: worker.log().count("succeeded") >= 2, timeout=60), worker.log()[-2000:]
    finally:
        worker.stop()
    assert 0 < before < len(expected)
    assert_flags_complete(expected, patients=10)
