"""The expected course of an antidepressant course (clinical-reference §4 time_course), and
whether a course is "not on track". Pure functions of loaded rows: no queries.

**What §4 gives.** Rates, not a curve: of patients with severe depression on a
second-generation antidepressant, ~50 % respond (PHQ-9 ≥ 50 % below baseline) and 32 % remit
(PHQ-9 < 5) by week 6; 68 % and 49 % by week 12.

**The band drawn from it** (``expected_band``, [P] TRAJECTORY_CHECKPOINTS). A response and a
remission are PHQ-9 levels: for a baseline B, "responded" is PHQ-9 ≤ B/2 and "remitted" is
PHQ-9 ≤ 4. So at weeks 6 and 12 the rates say how many patients are below each level:

======  ==========================  ==========================
week    at or below B/2 (response)  at or below 4 (remission)
======  ==========================  ==========================
6       50 %                        32 %
12      68 %                        49 %
======  ==========================  ==========================

The band spans 4 to B/2 from week 6 to week 12: the middle of §4's patients. The median
patient is at its top edge by week 6 (half responded) and near its bottom edge by week 12
(half remitted). A course above the band is doing worse than half of those patients at week 6
and than two thirds at week 12. Between the two weeks the edges are joined by straight lines,
which is drawing, not data.

**What §4 does not give**, so nothing is drawn for it: any rate or level for weeks 0–5
(early_improvement, "≥ 20 % reduction by week 2 predicts response", is a predictor, and a
third of early non-improvers still respond by week 6); any spread of scores (no percentile
band); anything after week 12; anything for a baseline below the severe band
(PHQ9_SEVERE_FROM: §4 time_course is about *severe* depression).

**Not on track** (``not_on_track``) is §4 not_improving exactly as the sweep judges it
(``rules.symptoms.not_improving_flags``), shown only once the course has run
TRAJECTORY_NOT_ON_TRACK_FROM_DAY days (six weeks): §4 says not to switch at week 2.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from tracker import clinical
from tracker.courses import Course, Score
from tracker.models import DrugClass


@dataclass(frozen=True)
class Checkpoint:
    """One week of §4's time course for a given baseline."""

    week: int  # weeks since the course started
    responded: float  # share of §4's patients at or below ``high``
    remitted: float  # share of §4's patients at or below ``low``
    low: float  # the remission level (PHQ-9 < 5, drawn at 4)
    high: float  # the response level (≤ 50 % of the baseline)


def expected_band(baseline_total: int) -> list[Checkpoint]:
    """The band's checkpoints for a course with this PHQ-9 baseline (see the module docstring).

    Empty when §4 gives no expected course for it: a baseline below the severe band.
    """
    if baseline_total < clinical.get("PHQ9_SEVERE_FROM"):
        return []
    low = clinical.get("REMISSION_BELOW")["phq9"] - 1
    high = baseline_total * (1 - clinical.get("RESPONSE_REDUCTION"))
    if high <= low:
        return []
    return [
        Checkpoint(week=int(week), responded=responded, remitted=remitted, low=low, high=high)
        for week, responded, remitted in clinical.get("TRAJECTORY_CHECKPOINTS")
    ]


def not_on_track(course: Course | None, phq9: Sequence[Score], today: dt.date, zone: ZoneInfo) -> list[str]:
    """Why an antidepressant course is not on track (empty when it is, or when it is too early).

    §4 not_improving as the sweep judges it, never before six weeks of treatment.
    """
    # Imported here: the rules import the services, which import the selectors (a cycle at import).
    from tracker.rules.symptoms import not_improving_flags

    if course is None or course.current.drug_class not in DrugClass.antidepressants():
        return []
    if (today - course.start_date).days < clinical.get("TRAJECTORY_NOT_ON_TRACK_FROM_DAY"):
        return []
    return [flag.message for flag in not_improving_flags(course, list(phq9), today, zone)]
