"""Sweeps: one module per family of flags, each ``sweep(*, now)`` set-based and idempotent.

Every sweep judges the instant it is given; only tasks and commands read the clock.
"""

from __future__ import annotations

from collections.abc import Callable

from tracker.rules import ketamine, missed_doses, reminders, side_effects, symptoms
from tracker.rules.base import SweepResult

SWEEPS: dict[str, Callable[..., SweepResult]] = {
    "missed_doses": missed_doses.sweep,
    "symptoms": symptoms.sweep,
    "side_effects": side_effects.sweep,
    "ketamine": ketamine.sweep,
    # Not a flag family: email reminders patients asked for, sent from the same beat (issue 15).
    "reminders": reminders.sweep,
}
