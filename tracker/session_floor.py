"""The session floor: for each session in progress, what the nurse must do next and when.

Specialist ketamine clinics organise the floor around one question: who needs me now? Each
session in progress gets one "next" line ("40-minute BP due in 3 min", "observation ends
11:32"), from §1 bp_schedule, bp_40min_window and min_observation. Pure: no queries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tracker import clinical
from tracker.models import InClinicSession


@dataclass(frozen=True)
class NextStep:
    text: str
    due_at: dt.datetime | None  # when it is due (None: now, or nothing timed)
    overdue: bool = False


def _minutes(delta: dt.timedelta) -> int:
    return max(0, round(delta.total_seconds() / 60))


def next_step(session: InClinicSession, now: dt.datetime, zone: dt.tzinfo) -> NextStep:
    """What is due next for ``session`` at ``now``, in words a nurse scans; clock times in ``zone``."""
    if session.first_device_at is None:
        if session.bp_before_systolic is None:
            return NextStep("Pre-dose blood pressure", None)
        if session.needs_bp_decision:
            return NextStep("Withhold or proceed: pre-dose BP above the threshold", None, overdue=True)
        return NextStep("Give the first device (or start the infusion)", None)
    first = session.first_device_at
    low, high = clinical.get("BP_40MIN_WINDOW_MINUTES")
    if session.bp_40min_systolic is None:
        opens, closes = first + dt.timedelta(minutes=low), first + dt.timedelta(minutes=high)
        target = first + dt.timedelta(minutes=clinical.get("BP_40MIN_TARGET_MINUTES"))
        if now < opens:
            return NextStep(f"40-minute BP due in {_minutes(target - now)} min", target)
        if now <= closes:
            return NextStep(f"40-minute BP due now (window closes in {_minutes(closes - now)} min)", target)
        return NextStep(f"40-minute BP overdue by {_minutes(now - target)} min", target, overdue=True)
    ends = session.earliest_discharge_at
    if ends is not None and now < ends:
        return NextStep(f"Observation ends {ends.astimezone(zone):%H:%M}", ends)
    return NextStep("Discharge checks: MOAA/s, dissociation, BP, no-driving acknowledgement", ends)


def minutes_since_first_device(session: InClinicSession, now: dt.datetime) -> int | None:
    if session.first_device_at is None:
        return None
    return _minutes(now - session.first_device_at)
