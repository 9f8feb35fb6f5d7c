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
    # Not a flag family: the dose reminders patients asked for (issue 15). They have their own
    # beat, every REMINDER_INTERVAL_SECONDS ("dose-reminders"), so they are not in FLAG_SWEEPS.
    "reminders": reminders.sweep,
}
# What run_all_sweeps runs every SWEEP_INTERVAL_SECONDS: every sweep but the reminders, which
# would otherwise run twice (once more each five minutes) on top of their own one-minute beat.
# SWEEPS still names them all, for run_sweep and the run_sweeps command (the demo).
FLAG_SWEEPS: tuple[str, ...] = tuple(name for name in SWEEPS if name != "reminders")
