"""Sweeps: one module per family of flags, each ``sweep(*, now)`` set-based and idempotent.

Every sweep judges the instant it is given; only tasks and commands read the clock.
"""

from __future__ import annotations

from collections.abc import Callable

from tracker.rules import ketamine, missed_doses, monitoring, reminders, side_effects, symptoms
from tracker.rules.base import SweepResult

SWEEPS: dict[str, Callable[..., SweepResult]] = {
    "missed_doses": missed_doses.sweep,
    "symptoms": symptoms.sweep,
    "side_effects": side_effects.sweep,
    "ketamine": ketamine.sweep,
    "monitoring": monitoring.sweep,  # §5 schedules: overdue measurements (issue 18)
    # Not a flag family: email reminders patients asked for, sent from the same beat (issue 15).
    "reminders": reminders.sweep,
}
