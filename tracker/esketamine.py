"""Ketamine and esketamine courses: phase schedules, interactions and the TRD eligibility check.

Pure computations over values already loaded (no queries), plus ``trd_trials_for_patient``,
the one read used by the prescribing form. Thresholds come from ``tracker.clinical``
(clinical-reference §1, §2, §3).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from tracker import clinical, courses
from tracker.courses import Score
from tracker.models import DoseSchedule, Patient, Prescription
from tracker.services.prescriptions import ScheduleSpec

T = TypeVar("T")
Phase = DoseSchedule.Phase
Kind = DoseSchedule.Kind


# --- Phase schedules (§1 "Dosing by phase", §2 course) ------------------------------------


def esketamine_phases(
    *,
    start_date: dt.date,
    time_of_day: str = "10:00",
    second_weekday: int | None = None,
    continuation_every_weeks: int = 2,
) -> list[ScheduleSpec]:
    """TRD esketamine: twice weekly in weeks 1–4, weekly in weeks 5–8, then every 1 or 2 weeks.

    The first induction day is ``start_date``; the second weekly session falls on
    ``second_weekday`` (default three days later, e.g. Monday and Thursday). Maintenance and
    continuation keep the start date's weekday. Week 9 onward is open-ended: the label says
    to use the least frequent schedule that keeps the response (clinician's choice, 1 or 2).
    """
    if continuation_every_weeks not in (1, 2):
        raise ValueError("Esketamine from week 9 is weekly or every two weeks (clinical-reference §1).")
    first = start_date.weekday()
    second = (first + 3) % 7 if second_weekday is None else second_weekday
    induction_end = start_date + dt.timedelta(weeks=clinical.get("ESK_INDUCTION_WEEKS"), days=-1)
    maintenance_end = induction_end + dt.timedelta(weeks=clinical.get("ESK_MAINTENANCE_WEEKS"))
    times = (time_of_day,)
    return [
        ScheduleSpec(
            kind=Kind.WEEKDAYS,
            times_of_day=times,
            weekdays=tuple(sorted({first, second})),
            phase=Phase.INDUCTION,
            start_date=start_date,
            end_date=induction_end,
        ),
        ScheduleSpec(
            kind=Kind.WEEKDAYS,
            times_of_day=times,
            weekdays=(first,),
            phase=Phase.MAINTENANCE,
            start_date=induction_end + dt.timedelta(days=1),
            end_date=maintenance_end,
        ),
        ScheduleSpec(
            kind=Kind.EVERY_N_DAYS,
            times_of_day=times,
            interval_days=7 * continuation_every_weeks,
            phase=Phase.CONTINUATION,
            start_date=maintenance_end + dt.timedelta(days=1),
        ),
    ]


def ketamine_series(
    *,
    start_date: dt.date,
    weekdays: Sequence[int] = (0, 2, 4),
    time_of_day: str = "10:00",
    infusions: int | None = None,
) -> list[ScheduleSpec]:
    """An IV ketamine series: ``infusions`` (default 6) on the given weekdays, then it ends (§2 course).

    Three weekdays a week gives two weeks, two a week three weeks. The schedule ends on the
    day of the last infusion, so exactly that many sessions are planned.
    """
    count = infusions or clinical.get("KETAMINE_SERIES_INFUSIONS")
    days = set(weekdays)
    if not days or any(d not in range(7) for d in days):
        raise ValueError("Choose at least one weekday (0 = Monday ... 6 = Sunday).")
    day, found = start_date, 0
    while True:
        if day.weekday() in days:
            found += 1
            if found == count:
                break
        day += dt.timedelta(days=1)
    return [
        ScheduleSpec(
            kind=Kind.WEEKDAYS,
            times_of_day=(time_of_day,),
            weekdays=tuple(sorted(days)),
            phase=Phase.INDUCTION,
            start_date=start_date,
            end_date=day,
        )
    ]


# --- Interactions (§1 label §7, §2 interactions) ----------------------------------------------


def interaction(drug_class: str) -> tuple[str, str] | None:
    """(what the co-medication is, what to monitor) if it interacts with ketamine/esketamine."""
    entry = clinical.get("KETAMINE_INTERACTING_CLASSES").get(drug_class)
    return (entry[0], entry[1]) if entry else None


# --- TRD eligibility (§3) ---------------------------------------------------------------------


@dataclass(frozen=True)
class RxRow:
    """The fields of one prescription version the TRD check needs."""

    id: int
    replaces_id: int | None
    drug_name: str
    drug_display: str
    atc_code: str
    usual_min: Decimal
    dose: Decimal
    start_date: dt.date
    end_date: dt.date | None
    marked_failed: bool
    doses_per_day: int = 1


RX_ROW_FIELDS = (
    "id",
    "replaces_id",
    "drug__name",
    "drug__display_name",
    "drug__atc_code",
    "drug__usual_min",
    "dose",
    "start_date",
    "end_date",
    "clinician_marked_failed",
    "regular_doses_per_day",
)


def rx_row(values: dict) -> RxRow:
    return RxRow(
        id=values["id"],
        replaces_id=values["replaces_id"],
        drug_name=values["drug__name"],
        drug_display=values["drug__display_name"],
        atc_code=values["drug__atc_code"],
        usual_min=values["drug__usual_min"],
        dose=values["dose"],
        start_date=values["start_date"],
        end_date=values["end_date"],
        marked_failed=values["clinician_marked_failed"],
        doses_per_day=values["regular_doses_per_day"],
    )


@dataclass(frozen=True)
class Trial:
    drug_display: str
    drug_name: str
    adequate_days: int
    failed_because: str | None  # None: not shown to have failed

    @property
    def counts(self) -> bool:
        """§3: adequate (≥ 42 days at ≥ the usual minimum) and failed."""
        return self.adequate_days >= clinical.get("TRD_ADEQUATE_TRIAL_DAYS") and self.failed_because is not None


def is_antidepressant_for_trd(atc_code: str) -> bool:
    """§3 adequate_trial: ATC N06A, excluding esketamine (N06AX27)."""
    return atc_code.startswith(clinical.get("TRD_ANTIDEPRESSANT_ATC_PREFIX")) and atc_code not in clinical.get(
        "TRD_EXCLUDED_ATC"
    )


def version_chains(
    rows: Iterable[T], id_of: Callable[[T], int], replaces_of: Callable[[T], int | None]
) -> list[list[T]]:
    """Prescription versions grouped into courses by ``replaces`` links, each oldest first."""
    by_id = {id_of(r): r for r in rows}
    replaced = {replaces_of(r) for r in by_id.values() if replaces_of(r)}
    chains = []
    for row in by_id.values():
        if id_of(row) in replaced:
            continue
        chain = [row]
        while replaces_of(chain[-1]) in by_id:
            chain.append(by_id[replaces_of(chain[-1])])
        chains.append(list(reversed(chain)))
    return sorted(chains, key=lambda c: id_of(c[0]))


def _longest_adequate_run(chain: list[RxRow], today: dt.date) -> int:
    """Most consecutive days at ≥ the usual minimum dose, across dose-change versions."""
    best = run = 0
    for version in chain:
        end = min(version.end_date or today, today)
        days = max((end - version.start_date).days + 1, 0)
        # The usual range is per day (§6), so a twice-daily 150 mg counts as 300 mg.
        run = run + days if version.dose * version.doses_per_day >= version.usual_min else 0
        best = max(best, run)
    return best


def judge_trials(rows: Iterable[RxRow], phq9: Sequence[Score], today: dt.date, zone: ZoneInfo) -> list[Trial]:
    """Every antidepressant course on record as a §3 trial: its adequate days and whether it failed."""
    trials = []
    below = clinical.get("TRD_NON_RESPONSE_BELOW")
    antidepressants = [r for r in rows if is_antidepressant_for_trd(r.atc_code)]
    for chain in version_chains(antidepressants, lambda r: r.id, lambda r: r.replaces_id):
        first, last = chain[0], chain[-1]
        failed: str | None = None
        if any(v.marked_failed for v in chain):
            failed = "marked failed by the clinician"
        else:
            end = min(last.end_date or today, today)
            during = [s for s in phq9 if s.completed_at.astimezone(zone).date() <= end + dt.timedelta(days=7)]
            base = courses.baseline(during, first.start_date, zone)
            later = [s for s in during if base is not None and s.completed_at > base.completed_at]
            if base is not None and later:
                change = courses.reduction(base.total, later[-1].total)
                if change is not None and change < below:
                    failed = f"PHQ-9 {base.total} → {later[-1].total}"
        trials.append(Trial(last.drug_display, last.drug_name, _longest_adequate_run(chain, today), failed))
    return trials


def failed_ingredients(trials: Iterable[Trial]) -> dict[str, Trial]:
    """§3 count: distinct ingredients with an adequate failed trial (a re-trial counts once)."""
    found: dict[str, Trial] = {}
    for trial in trials:
        if trial.counts:
            found.setdefault(trial.drug_name, trial)
    return found


def trd_shortfall(trials: Sequence[Trial]) -> str | None:
    """A sentence saying why TRD is not confirmed (§3 action), or None if ≥ 2 adequate failed trials."""
    needed = clinical.get("TRD_MIN_FAILED_TRIALS")
    failed = failed_ingredients(trials)
    if len(failed) >= needed:
        return None
    found = "; ".join(f"{t.drug_display} ({t.failed_because}, {t.adequate_days} days)" for t in failed.values())
    return (
        f"{len(failed)} adequate failed antidepressant trial{'s' if len(failed) != 1 else ''} on record "
        f"(treatment resistance needs {needed}: ≥ {clinical.get('TRD_ADEQUATE_TRIAL_DAYS')} days at an adequate "
        f"dose with < {clinical.get('TRD_NON_RESPONSE_BELOW'):.0%} PHQ-9 improvement or marked failed)"
        + (f": {found}." if found else ".")
    )


def trd_shortfall_for_patient(patient: Patient, today: dt.date) -> str | None:
    """The TRD check for one patient, for the prescribing form (two queries)."""
    rows = [rx_row(v) for v in Prescription.objects.current().filter(patient=patient).values(*RX_ROW_FIELDS)]
    scores = [
        Score(pk, patient.pk, "phq9", completed_at, total)
        for pk, completed_at, total in patient.assessments.current()
        .filter(instrument="phq9")
        .order_by("completed_at", "id")
        .values_list("id", "completed_at", "total")
    ]
    return trd_shortfall(judge_trials(rows, scores, today, patient.zone))
