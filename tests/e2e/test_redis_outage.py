"""Redis down: patient and clinician writes still succeed; once Redis is back the pending
notifications go out and the next sweep raises every flag that came due. Nothing lost,
nothing doubled. The test starts and stops its own redis-server and worker."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.celery import app
from tests import factories
from tests.conftest import need_service
from tests.dosing import daily_course
from tests.e2e.services import PrivateRedis, start_worker, wait_for
from tests.e2e.test_notifications_worker import emails_in
from tracker.models import Assessment, DoseEvent, Flag, FlagFact, FlagKind, PlannedDose, Severity, SideEffectReport
from tracker.services.doses import MISSED_KINDS, missed_fact_key

pytestmark = pytest.mark.services


@pytest.fixture
def broker(transactional_db, tmp_path):
    """The app's real broker setting pointed at a private redis-server for this test."""
    need_service(connection.vendor == "postgresql", "worker processes need the test database on PostgreSQL")
    redis = PrivateRedis(folder=tmp_path)
    redis.start()
    saved = app.conf.broker_url
    app.conf.broker_url = redis.url
    app.pool.force_close_all()
    app._pool = None  # the producer pool caches connections to the previous broker
    try:
        yield redis
    finally:
        redis.stop()
        app.conf.broker_url = saved
        app.pool.force_close_all()
        app._pool = None


HALF_DAY = dt.timedelta(hours=6)


def test_writes_survive_a_redis_outage_and_nothing_is_lost_or_doubled(broker, clinic, clinician, tmp_path):
    user = factories.UserFactory(username="outage-patient")
    patient = factories.PatientFactory(clinic=clinic, responsible_clinician=clinician, user=user)
    start = timezone.localdate(timezone.now().astimezone(patient.zone)) - dt.timedelta(days=2)
    rx = daily_course(patient, clinician, start=start.isoformat(), times=("00:05", "12:05"), dose="25")
    due_now = PlannedDose.objects.filter(prescription=rx, deadline__lte=timezone.now())
    # The dose a patient would tap now: within ±6 h (half the 12-hour interval, §7 matching), so the
    # portal does not ask to confirm a time far from it.
    now = timezone.now()
    open_dose = (
        PlannedDose.objects.filter(prescription=rx, status="pending", due_at__range=(now - HALF_DAY, now + HALF_DAY))
        .order_by("due_at")
        .first()
    )

    broker.stop()  # ---- Redis is down from here ----
    assert not broker.answers()
    portal = Client()
    portal.force_login(user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=clinician.user).key}")
    writes = [
        portal.post(reverse("portal:log_dose", args=[open_dose.pk]), {"action": "taken"}),
        portal.post(reverse("portal:questionnaire", args=["phq9"]), {f"q{n}": 2 for n in range(1, 10)}),
        api.post(
            "/api/side-effects/",
            {"patient": patient.pk, "effect": "nausea", "severity": "severe"},
            format="json",
        ),
        api.post(
            "/api/assessments/",
            {"patient": patient.pk, "instrument": "madrs", "answers": [3] * 10},
            format="json",
        ),
    ]
    statuses = [w.status_code for w in writes]
    assert all(code < 400 for code in statuses), [(w.status_code, w.content[:300]) for w in writes]
    stored = (
        DoseEvent.objects.filter(patient=patient).count(),
        Assessment.objects.filter(patient=patient).count(),
        SideEffectReport.objects.filter(patient=patient).count(),
    )
    assert stored == (1, 2, 1)
    suicidality = Flag.objects.get(kind=FlagKind.SCALE_SUICIDALITY)
    assert suicidality.notified_at is None  # the enqueue failed; the flag waits in the outbox

    broker.start()  # ---- Redis is back (same port, empty: everything queued before is gone) ----
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    queue = f"outage-{uuid.uuid4().hex[:8]}"
    worker = start_worker(
        broker.url,
        queue,
        tmp_path / "worker.log",
        queue,
        extra_env={"DJANGO_SETTINGS_MODULE": "tests.e2e.settings_file_email", "TRACKER_TEST_EMAIL_DIR": str(mail_dir)},
    )
    try:
        assert wait_for(lambda: "ready." in worker.log(), timeout=60), worker.log()[-3000:]
        at = timezone.now().isoformat()
        with app.connection_for_write(broker.url) as conn:  # beat's next runs
            app.send_task("tracker.run_all_sweeps", (at,), connection=conn, queue=queue)
            app.send_task("tracker.send_flag_notifications", connection=conn, queue=queue)
        assert wait_for(lambda: worker.log().count("succeeded") >= 2, timeout=90), worker.log()[-3000:]
        with app.connection_for_write(broker.url) as conn:  # urgent flags the sweep raised, and a repeat run
            app.send_task("tracker.send_flag_notifications", connection=conn, queue=queue)
            app.send_task("tracker.send_flag_notifications", connection=conn, queue=queue)
        assert wait_for(lambda: worker.log().count("succeeded") >= 4, timeout=60), worker.log()[-3000:]
    finally:
        worker.stop()

    # Every dose that came due without a log is flagged missed, once.
    missed = set(due_now.exclude(pk=open_dose.pk).values_list("pk", flat=True))
    keys = list(FlagFact.objects.filter(flag__kind__in=MISSED_KINDS).values_list("key", flat=True))
    assert sorted(keys) == sorted(missed_fact_key(pk) for pk in missed)
    # The severe side effect reported during the outage is flagged by the sweep.
    assert Flag.objects.filter(kind=FlagKind.SE_SEVERE).count() == 1
    # Each urgent or critical flag was emailed exactly once.
    urgent = Flag.objects.filter(severity__gte=Severity.URGENT)
    subjects = emails_in(mail_dir)
    assert urgent.count() >= 2
    assert len(subjects) == urgent.count()
    assert not urgent.filter(notified_at__isnull=True).exists()
    all_keys = list(Flag.objects.values_list("dedup_key", flat=True))
    assert len(all_keys) == len(set(all_keys))
    print(
        f"\nredis outage: writes attempted {len(writes)}, stored {sum(stored)} rows, "
        f"missed-dose flags expected {len(missed)} raised {len(keys)}, urgent flags {urgent.count()} emailed "
        f"{len(subjects)}, duplicates {len(all_keys) - len(set(all_keys))}"
    )
