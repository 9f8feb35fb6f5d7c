"""What every sweep returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SweepResult:
    name: str
    examined: int
    flags_raised: int


def in_batches(step: Callable[[int], tuple[int, int]], batch_size: int) -> tuple[int, int]:
    """Run a claim-and-flag ``step`` until a batch comes back short; (claimed, raised) in total.

    Each step commits on its own, so a worker killed mid-sweep loses at most one batch's
    claims, and those roll back with it.
    """
    claimed_total = raised_total = 0
    while True:
        claimed, raised = step(batch_size)
        claimed_total, raised_total = claimed_total + claimed, raised_total + raised
        if claimed < batch_size:
            return claimed_total, raised_total
