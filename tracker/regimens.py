"""Regimens a prescriber chooses -> the dose schedules that plan them.

A regimen is how a clinician says it ("twice daily at 08:00 and 20:00", "esketamine phases
from Monday, second session on Thursday", "six ketamine infusions on Mon, Wed and Fri").
It becomes one or more ``ScheduleSpec``s, which ``services.prescriptions`` stores and
``tracker.scheduling`` plans; the phase arithmetic is ``tracker.esketamine``'s (§1, §2).
Pure: no queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import models

from tracker import esketamine
from tracker.models import DoseSchedule, Drug
from tracker.models.prescriptions import times_of_day_error
from tracker.services.errors import ServiceError
from tracker.services.prescriptions import ScheduleSpec

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class RegimenKind(models.TextChoices):
    TIMES = "times", "Every day at set times"
    WEEKDAYS = "weekdays", "On chosen weekdays"
    EVERY_N_DAYS = "every_n_days", "Every N days"
    PRN = "prn", "As needed (PRN, never counted as missed)"
    ESKETAMINE_PHASES = (
        "esketamine_phases",
        "Esketamine phases: twice weekly in weeks 1–4, weekly in 5–8, then every 1–2 weeks",
    )
    KETAMINE_SERIES = "ketamine_series", "IV ketamine series: a number of infusions on chosen weekdays"


# Which drugs a phase regimen belongs to (clinical-reference §1 esketamine, §2 IV ketamine).
REGIMEN_DRUG = {RegimenKind.ESKETAMINE_PHASES: "esketamine", RegimenKind.KETAMINE_SERIES: "ketamine"}


@dataclass(frozen=True)
class Regimen:
    kind: str
    times_of_day: Sequence[str] = ("08:00",)
    weekdays: Sequence[int] = field(default_factory=tuple)
    interval_days: int = 1
    prn_max_doses_per_day: int | None = None
    continuation_every_weeks: int = 2
    infusions: int | None = None

    def specs(self, *, drug: Drug, start_date: dt.date, end_date: dt.date | None = None) -> list[ScheduleSpec]:
        """The schedules of this regimen for ``drug`` from ``start_date``; ServiceError names the field."""
        kind = self.kind
        needed = REGIMEN_DRUG.get(kind)
        if needed is not None and drug.name != needed:
            raise ServiceError({"regimen": f"{RegimenKind(kind).label.split(':')[0]} is for {needed}, not {drug}."})
        if drug.name in REGIMEN_DRUG.values() and kind in (RegimenKind.TIMES, RegimenKind.PRN):
            # §1/§2: sessions are given in the clinic a few times a week, never daily or as needed.
            raise ServiceError(
                {"regimen": f"{drug} is given in clinic sessions: choose its phases, a series or weekdays."}
            )
        times = tuple(self.times_of_day)
        if kind != RegimenKind.PRN and (error := times_of_day_error(DoseSchedule.Kind.DAILY, list(times))):
            raise ServiceError({"times_of_day": error})
        if kind == RegimenKind.TIMES:
            return [ScheduleSpec(kind=DoseSchedule.Kind.DAILY, times_of_day=times, end_date=end_date)]
        if kind == RegimenKind.WEEKDAYS:
            if not self.weekdays:
                raise ServiceError({"weekdays": "Choose at least one weekday."})
            return [
                ScheduleSpec(
                    kind=DoseSchedule.Kind.WEEKDAYS,
                    times_of_day=times,
                    weekdays=tuple(self.weekdays),
                    end_date=end_date,
                )
            ]
        if kind == RegimenKind.EVERY_N_DAYS:
            if self.interval_days < 2:
                raise ServiceError({"interval_days": "Every N days needs N of 2 or more (1 is every day)."})
            return [
                ScheduleSpec(
                    kind=DoseSchedule.Kind.EVERY_N_DAYS,
                    times_of_day=times,
                    interval_days=self.interval_days,
                    end_date=end_date,
                )
            ]
        if kind == RegimenKind.PRN:
            if not self.prn_max_doses_per_day:
                raise ServiceError({"prn_max_doses_per_day": "Say how many as-needed doses a day are allowed at most."})
            return [
                ScheduleSpec(
                    kind=DoseSchedule.Kind.PRN,
                    times_of_day=(),
                    prn_max_doses_per_day=self.prn_max_doses_per_day,
                    end_date=end_date,
                )
            ]
        if kind == RegimenKind.ESKETAMINE_PHASES:
            return self._esketamine(start_date, times)
        if kind == RegimenKind.KETAMINE_SERIES:
            if not self.weekdays:
                raise ServiceError({"weekdays": "Choose the weekdays of the infusions."})
            return esketamine.ketamine_series(
                start_date=start_date, weekdays=self.weekdays, time_of_day=times[0], infusions=self.infusions
            )
        raise ServiceError({"regimen": "Choose how the doses are given."})

    def _esketamine(self, start_date: dt.date, times: tuple[str, ...]) -> list[ScheduleSpec]:
        """§1: the first induction session is the start date; the clinic's other day is the second."""
        first = start_date.weekday()
        others = sorted(set(self.weekdays) - {first})
        if len(others) != 1 or len(set(self.weekdays)) > 2:
            raise ServiceError(
                {
                    "weekdays": f"Induction is twice weekly: tick the start date's day ({WEEKDAY_NAMES[first]}) "
                    "and one other clinic day."
                }
            )
        if self.continuation_every_weeks not in (1, 2):
            raise ServiceError({"continuation_every_weeks": "From week 9 sessions are weekly or every two weeks."})
        return esketamine.esketamine_phases(
            start_date=start_date,
            time_of_day=times[0],
            second_weekday=others[0],
            continuation_every_weeks=self.continuation_every_weeks,
        )
