"""Treatment courses and their outcomes, computed from rows already loaded (no queries).

A course is the chain of prescription versions of one drug linked by ``replaces``: a dose
change makes a new version, the course goes on. Outcome rules are clinical-reference §4.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tracker import clinical


@dataclass(frozen=True)
class Version:
    id: int
    replaces_id: int | None
    patient_id: int
    drug_id: int
    drug_name: str
    drug_display: str
    drug_class: str
    usual_min: Decimal
    dose: Decimal
    dose_unit: str
    start_date: dt.date
    status: str
    doses_per_day: int = 1

    @property
    def daily_dose(self) -> Decimal:
        """The scheduled total on a dosing day: what "an adequate dose" is judged on (§3, §4)."""
        return self.dose * self.doses_per_day


@dataclass
class Course:
    versions: list[Version] = field(default_factory=list)  # oldest first

    @property
    def current(self) -> Version:
        return self.versions[-1]

    @property
    def start_date(self) -> dt.date:
        return self.versions[0].start_date

    @property
    def last_change_date(self) -> dt.date:
        return self.current.start_date

    @property
    def is_active(self) -> bool:
        return self.current.status == "active"

    def increases(self) -> list[tuple[Version, Version]]:
        """(before, after) pairs where a new version raised the dose."""
        return [(a, b) for a, b in zip(self.versions, self.versions[1:], strict=False) if b.dose > a.dose]

    def week_of(self, day: dt.date, since: dt.date | None = None) -> int:
        """Week of treatment on ``day`` (week 1 is the first seven days)."""
        return (day - (since or self.start_date)).days // 7 + 1


def build_courses(versions: Iterable[Version]) -> list[Course]:
    """Group prescription versions into courses by following ``replaces`` links."""
    by_id = {v.id: v for v in versions}
    replaced = {v.replaces_id for v in by_id.values() if v.replaces_id}
    courses = []
    for v in by_id.values():
        if v.id in replaced:
            continue  # not the newest version of its chain
        chain = [v]
        while chain[-1].replaces_id in by_id:
            chain.append(by_id[chain[-1].replaces_id])
        courses.append(Course(versions=list(reversed(chain))))
    return sorted(courses, key=lambda c: (c.start_date, c.current.id))


@dataclass(frozen=True)
class Score:
    id: int
    patient_id: int
    instrument: str
    completed_at: dt.datetime
    total: int


def baseline(scores: Sequence[Score], course_start: dt.date, zone: dt.tzinfo = dt.UTC) -> Score | None:
    """§4 baseline: the last score in the 14 days before the course started, else the first in the 7 after."""
    before = dt.timedelta(days=clinical.get("BASELINE_DAYS_BEFORE"))
    after = dt.timedelta(days=clinical.get("BASELINE_DAYS_AFTER"))
    dated = sorted(scores, key=lambda s: s.completed_at)
    prior = [s for s in dated if course_start - before <= s.completed_at.astimezone(zone).date() < course_start]
    if prior:
        return prior[-1]
    following = [s for s in dated if course_start <= s.completed_at.astimezone(zone).date() <= course_start + after]
    return following[0] if following else None


def reduction(baseline_total: int, total: int) -> float | None:
    """Fractional improvement from baseline (0.5 = halved); None when the baseline is 0."""
    if baseline_total <= 0:
        return None
    return (baseline_total - total) / baseline_total


def is_response(baseline_total: int, total: int, *, instrument: str = "phq9") -> bool:
    """§4 response: ≥ 50 % reduction from baseline, on an instrument §4 defines it for.

    §4 "Outcome definitions (PHQ-9 unless noted)" gives response for PHQ-9 only
    (clinical.RESPONSE_INSTRUMENTS): a halved GAD-7 or MADRS is never called a response.
    """
    if instrument not in clinical.get("RESPONSE_INSTRUMENTS"):
        return False
    change = reduction(baseline_total, total)
    return change is not None and change >= clinical.get("RESPONSE_REDUCTION")


def is_remission(instrument: str, total: int) -> bool:
    """§4 remission: PHQ-9 < 5, MADRS ≤ 10."""
    below = clinical.get("REMISSION_BELOW").get(instrument)
    return below is not None and total < below


@dataclass(frozen=True)
class Outcome:
    instrument: str
    baseline: Score | None
    latest: Score | None
    reduction: float | None
    response: bool
    remission: bool


def outcome(instrument: str, scores: Sequence[Score], course_start: dt.date, zone: dt.tzinfo = dt.UTC) -> Outcome:
    """Baseline, latest score and response/remission state for one instrument on one course."""
    own = sorted((s for s in scores if s.instrument == instrument), key=lambda s: s.completed_at)
    base = baseline(own, course_start, zone)
    after = [s for s in own if base is None or s.completed_at > base.completed_at]
    latest = after[-1] if after else None
    if base is None or latest is None:
        return Outcome(
            instrument, base, latest, None, False, latest is not None and is_remission(instrument, latest.total)
        )
    return Outcome(
        instrument=instrument,
        baseline=base,
        latest=latest,
        reduction=reduction(base.total, latest.total),
        response=is_response(base.total, latest.total, instrument=instrument),
        remission=is_remission(instrument, latest.total),
    )


@dataclass(frozen=True)
class Weight:
    id: int
    patient_id: int
    measured_at: dt.datetime
    weight_kg: Decimal


def weight_baseline(weights: Sequence[Weight], course_start: dt.date, zone: dt.tzinfo = dt.UTC) -> Weight | None:
    """§5 antipsychotic_metabolic baseline: the latest weight in the 90 days up to the course
    start (the start day included), else the first in the 7 days after (tracker defaults)."""
    before = dt.timedelta(days=clinical.get("WEIGHT_BASELINE_DAYS_BEFORE"))
    after = dt.timedelta(days=clinical.get("WEIGHT_BASELINE_DAYS_AFTER"))
    dated = sorted(weights, key=lambda w: (w.measured_at, w.id))
    prior = [w for w in dated if course_start - before <= w.measured_at.astimezone(zone).date() <= course_start]
    if prior:
        return prior[-1]
    following = [w for w in dated if course_start < w.measured_at.astimezone(zone).date() <= course_start + after]
    return following[0] if following else None


def weight_gain_percent(baseline_kg: Decimal, latest_kg: Decimal) -> Decimal:
    """Change from baseline in per cent of the baseline (negative for a loss)."""
    return (latest_kg - baseline_kg) * 100 / baseline_kg
