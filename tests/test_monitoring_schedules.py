"""The §5 monitoring schedules (issue 18): each schedule's due dates from the course's start,
and across a dose increase, restarting only where the reference says so (stimulants)."""

from __future__ import annotations

import datetime as dt

import pytest

from tracker.monitoring import DueItem, due_dates, next_due, schedules

START = dt.date(2026, 1, 5)
INCREASE = dt.date(2026, 2, 16)  # week 6


def weeks(*offsets: int, anchor: dt.date = START) -> list[dt.date]:
    return [anchor + dt.timedelta(weeks=w) for w in offsets]


@pytest.fixture
def plans():
    return schedules()


def test_every_reference_schedule_is_defined(plans):
    assert set(plans) == {
        "antipsychotic_weight",
        "antipsychotic_bp_glucose",
        "antipsychotic_lipids",
        "stimulant_bp_pulse",
        "fibser",
    }


def test_antipsychotic_weight_baseline_4_8_12_then_quarterly_not_restarted_by_a_dose_change(plans):
    until = START + dt.timedelta(weeks=40)
    dates = due_dates(plans["antipsychotic_weight"], start_date=START, dose_increases=[INCREASE], until=until)
    assert dates == weeks(0, 4, 8, 12, 25, 38)


def test_antipsychotic_bp_glucose_baseline_12_weeks_then_annually(plans):
    until = START + dt.timedelta(weeks=120)
    dates = due_dates(plans["antipsychotic_bp_glucose"], start_date=START, dose_increases=[INCREASE], until=until)
    assert dates == weeks(0, 12, 64, 116)
    assert plans["antipsychotic_bp_glucose"].measures == ("blood_pressure", "fasting_glucose")


def test_lipids_baseline_12_weeks_then_every_5_years(plans):
    until = START + dt.timedelta(weeks=300)
    assert due_dates(plans["antipsychotic_lipids"], start_date=START, until=until) == weeks(0, 12, 272)


def test_stimulant_bp_and_pulse_at_baseline_and_at_each_dose_increase(plans):
    until = START + dt.timedelta(weeks=20)
    second = INCREASE + dt.timedelta(weeks=4)
    dates = due_dates(plans["stimulant_bp_pulse"], start_date=START, dose_increases=[INCREASE, second], until=until)
    assert dates == [START, INCREASE, second]
    assert plans["stimulant_bp_pulse"].measures == ("blood_pressure", "pulse")


def test_fibser_weeks_2_4_6_9_12_not_restarted(plans):
    until = START + dt.timedelta(weeks=30)
    assert due_dates(plans["fibser"], start_date=START, dose_increases=[INCREASE], until=until) == weeks(2, 4, 6, 9, 12)


class TestNextDue:
    def test_nothing_measured_the_baseline_is_due_then_overdue(self, plans):
        plan = plans["antipsychotic_weight"]
        item = next_due(plan, "weight", start_date=START, measured_dates=[], today=START)
        assert item == DueItem("antipsychotic_weight", "weight", START) and not item.is_overdue(START)
        later = START + dt.timedelta(days=10)
        assert next_due(plan, "weight", start_date=START, measured_dates=[], today=later).is_overdue(later)

    def test_a_measurement_fulfils_its_date_and_the_next_is_due(self, plans):
        plan = plans["antipsychotic_weight"]
        baseline = START - dt.timedelta(days=3)  # taken the week before the start: counts
        item = next_due(plan, "weight", start_date=START, measured_dates=[baseline], today=START)
        assert item.due_date == weeks(4)[0]

    def test_a_missed_date_is_stood_for_by_the_later_one(self, plans):
        plan = plans["antipsychotic_weight"]
        today = START + dt.timedelta(weeks=9)  # week 4 missed, week 8 passed too
        item = next_due(plan, "weight", start_date=START, measured_dates=[START], today=today)
        assert item.due_date == weeks(8)[0] and item.is_overdue(today)

    def test_stimulant_dose_increase_makes_bp_due_again(self, plans):
        plan = plans["stimulant_bp_pulse"]
        before = next_due(plan, "pulse", start_date=START, measured_dates=[START], today=INCREASE)
        assert before is None  # baseline done, no increase yet
        after = next_due(
            plan, "pulse", start_date=START, dose_increases=[INCREASE], measured_dates=[START], today=INCREASE
        )
        assert after.due_date == INCREASE
        done = next_due(
            plan,
            "pulse",
            start_date=START,
            dose_increases=[INCREASE],
            measured_dates=[START, INCREASE],
            today=INCREASE + dt.timedelta(days=1),
        )
        assert done is None
