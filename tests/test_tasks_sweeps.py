"""run_all_sweeps_task: every flag sweep runs on its own, so one that fails cannot skip the others;
the dose reminders are left to their own beat."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import OperationalError

from tests.dosing import at, daily_course
from tests.symptoms import side_effect
from tests.test_reminders import remind_daily
from tracker import rules
from tracker.models import DoseReminder, Flag, FlagKind
from tracker.tasks import SweepsFailed, run_all_sweeps_task, run_sweep_task

pytestmark = pytest.mark.django_db


def boom(**_kwargs):
    raise ZeroDivisionError("a bug in one family of flags")


@pytest.mark.parametrize("failing", ["missed_doses", "symptoms"])
def test_a_failing_sweep_does_not_skip_the_ones_after_it(patient, clinician, monkeypatch, failing):
    daily_course(patient, clinician, start="2026-06-01")  # 08:00 doses, none logged: missed by the 3rd
    side_effect(patient, "2026-06-02T12:00", "nausea", "severe")
    monkeypatch.setitem(rules.SWEEPS, failing, boom)
    with pytest.raises(SweepsFailed, match=failing) as raised:
        run_all_sweeps_task("2026-06-03T12:00:00+00:00")
    assert isinstance(raised.value.__cause__, ZeroDivisionError)
    # The side-effect sweep comes after both: it still ran and flagged the severe report.
    assert Flag.objects.filter(kind=FlagKind.SE_SEVERE).count() == 1
    missed = Flag.objects.filter(kind__in=(FlagKind.DOSE_MISSED, FlagKind.DOSE_MISSED_REPEATED)).exists()
    assert missed is (failing != "missed_doses")


def test_all_sweeps_report_their_counts_when_none_fails(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    outcome = run_all_sweeps_task("2026-06-03T12:00:00+00:00")
    assert list(outcome) == list(rules.FLAG_SWEEPS)
    assert outcome["missed_doses"]["flags_raised"] >= 1


def test_run_all_sweeps_leaves_the_reminders_to_their_own_one_minute_beat(patient, clinician):
    """Run from both beats, a reminder sweep would run twice as often as configured."""
    remind_daily(patient, clinician)  # reminded at 06:55 on 27 March
    outcome = run_all_sweeps_task(at("2026-03-27T06:56").isoformat())
    assert "reminders" not in outcome and set(rules.SWEEPS) - set(outcome) == {"reminders"}
    assert mail.outbox == [] and not DoseReminder.objects.exists()
    assert run_sweep_task("reminders", at("2026-03-27T06:56").isoformat())["examined"] == 2  # planned, sent
    assert len(mail.outbox) == 1


def test_the_run_sweeps_command_still_runs_the_reminders_for_the_demo(patient, clinician):
    remind_daily(patient, clinician)
    out = StringIO()
    call_command("run_sweeps", "--at", "2026-03-27T06:56:00Z", stdout=out)
    assert "reminders: examined 2" in out.getvalue() and len(mail.outbox) == 1


def test_a_database_error_in_a_sweep_is_raised_for_a_retry_after_the_others_ran(patient, clinician, monkeypatch):
    side_effect(patient, "2026-06-02T12:00", "nausea", "severe")

    def unreachable(**_kwargs):
        raise OperationalError("database briefly unreachable")

    monkeypatch.setitem(rules.SWEEPS, "symptoms", unreachable)
    with pytest.raises(OperationalError):
        run_all_sweeps_task.run("2026-06-03T12:00:00+00:00")
    assert Flag.objects.filter(kind=FlagKind.SE_SEVERE).count() == 1
