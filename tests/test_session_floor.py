"""The session floor: what each session in progress needs next, at the rule's edges, and the page."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from tests.dosing import at
from tests.test_ketamine_sessions import dosed_session, esketamine_course, planned
from tracker.services.sessions import record_monitoring, start_session
from tracker.session_floor import next_step

pytestmark = pytest.mark.django_db
LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("now", "text", "overdue"),
    [
        ("2026-06-01T09:30", "40-minute BP due in 15 min", False),  # first device 09:05 UTC
        ("2026-06-01T09:34", "40-minute BP due in 11 min", False),  # window opens at 30 min (09:35)
        ("2026-06-01T09:35", "40-minute BP due now (window closes in 30 min)", False),
        ("2026-06-01T10:05", "40-minute BP due now (window closes in 0 min)", False),  # 60 min: still in
        ("2026-06-01T10:06", "40-minute BP overdue by 21 min", True),
    ],
)
def test_the_40_minute_bp_at_its_window_edges(patient, clinician, now, text, overdue):
    session = dosed_session(esketamine_course(patient, clinician), clinician)
    step = next_step(session, at(now), LONDON)
    assert (step.text, step.overdue) == (text, overdue)


def test_after_the_40_minute_bp_the_observation_end_in_local_time_then_discharge(patient, clinician):
    session = dosed_session(esketamine_course(patient, clinician), clinician)
    session = record_monitoring(
        session=session,
        values={"bp_40min_systolic": 132, "bp_40min_diastolic": 84, "bp_40min_at": at("2026-06-01T09:45")},
        now=at("2026-06-01T09:46"),
    ).session
    # 120 min after 09:05 UTC is 11:05 UTC, 12:05 on the London wall clock (BST).
    assert next_step(session, at("2026-06-01T11:04"), LONDON).text == "Observation ends 12:05"
    assert next_step(session, at("2026-06-01T11:05"), LONDON).text.startswith("Discharge checks")


def test_before_dosing_a_high_bp_asks_for_the_decision_first(patient, clinician):
    rx = esketamine_course(patient, clinician)
    session = start_session(
        prescription=rx,
        administered_by=clinician,
        planned_dose=planned(rx),
        bp_before_systolic=150,
        bp_before_diastolic=95,
        now=at("2026-06-01T08:55"),
    ).session
    step = next_step(session, at("2026-06-01T09:00"), LONDON)
    assert step.overdue and step.text.startswith("Withhold or proceed")


def test_the_floor_page_and_its_refreshing_body(client, clinician, patient, other_patient, other_clinician):
    from django.utils import timezone

    first = (timezone.now() - dt.timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M")
    mine = dosed_session(esketamine_course(patient, clinician), clinician, first=first, day=None)
    theirs = dosed_session(esketamine_course(other_patient, other_clinician), other_clinician, first=first, day=None)
    client.force_login(clinician.user)
    url = reverse("admin:tracker_inclinicsession_floor")
    page = client.get(url).content.decode()
    assert f'data-session="{mine.pk}"' in page and f'data-session="{theirs.pk}"' not in page
    assert "40-minute BP due in" in page and "tracker/floor.js" in page
    fragment = client.get(url, {"fragment": "1"}).content.decode()
    assert fragment.lstrip().startswith("<tbody") and f'data-session="{mine.pk}"' in fragment
    assert "<html" not in fragment
