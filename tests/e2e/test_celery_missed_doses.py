"""End to end: a real Celery worker on Redis runs the missed-dose sweep against PostgreSQL."""

from __future__ import annotations

import time

import pytest

from config.celery import app
from tests.dosing import at, daily_course
from tracker.models import Flag, FlagFact, FlagKind, PlannedDose
from tracker.tasks import run_sweep_task

pytestmark = pytest.mark.services


def wait_for(predicate, timeout: float = 45.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def test_worker_sweep_raises_missed_dose_flags_once(celery_worker_process, clinic, clinician, patient):
    daily_course(patient, clinician, start="2026-06-01")  # 08:00 London, due 07:00 UTC daily
    worker = celery_worker_process
    with app.connection_for_write(worker.broker_url) as conn:
        run_sweep_task.apply_async(("missed_doses", "2026-06-02T14:00:00+00:00"), connection=conn, queue=worker.queue)
    facts = FlagFact.objects.filter(flag__kind=FlagKind.DOSE_MISSED)
    assert wait_for(lambda: facts.count() == 2), worker.log()[-3000:]  # one problem, two missed doses
    assert PlannedDose.objects.filter(status=PlannedDose.Status.MISSED).count() == 2

    # The same task delivered again (Redis may redeliver) raises nothing new.
    with app.connection_for_write(worker.broker_url) as conn:
        run_sweep_task.apply_async(("missed_doses", "2026-06-02T14:00:00+00:00"), connection=conn, queue=worker.queue)
    assert wait_for(lambda: worker.log().count("succeeded") >= 2), worker.log()[-3000:]
    assert facts.count() == 2
    (flag,) = Flag.objects.all()
    assert (flag.occurrences, flag.last_occurred_at) == (2, at("2026-06-02T13:00"))
