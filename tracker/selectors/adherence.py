"""The patient's streak: consecutive days with every planned dose taken (issue 15, "My progress").

A streak is encouragement, not surveillance: the portal shows it on "My progress" only, and
nothing here raises a flag (good news is not work for the clinician's to-do list).

**Definition.** Days are the patient's local calendar days (``PlannedDose.local_date``, fixed
when the dose was planned, so a 23- or 25-hour daylight-saving day is still one day), counted
back from today:

- a day with no planned dose (cancelled doses do not count) neither extends nor breaks it;
- a day whose planned doses were all taken extends it by one;
- a day with a dose skipped or missed breaks it, and so does a dose still "due" after its
  deadline (the §7 grace period is over; the missed-dose sweep simply has not run yet);
- a day with a dose still "due" within its deadline is *open*: today until its last dose is
  logged, or yesterday's late dose that may still be logged after midnight. An open day
  neither extends nor breaks it, so an unfinished today never takes away yesterday's streak,
  and today counts once all of today's doses are taken.

Clinic-only doses (a session given at the clinic) count like any other planned dose: the
clinic records them, and a cancelled session is no dose. As-needed medicines are never planned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q

from tracker.models import Patient, PlannedDose

BREAKS = (PlannedDose.Status.SKIPPED, PlannedDose.Status.MISSED)


@dataclass(frozen=True)
class DayTally:
    """One local day's planned doses, as the streak judges them."""

    date: dt.date
    planned: int
    broken: int  # skipped, missed, or still due after the deadline
    open: int  # still due, within the deadline


@dataclass(frozen=True)
class Streak:
    days: int  # consecutive days with every planned dose taken, ending today or before
    today_open: bool  # today has doses still to log (it counts once they are all taken)


def streak_from_days(days: Iterable[DayTally], today: dt.date) -> Streak:
    """The streak from days with planned doses, newest first (pure: the rules above, no query)."""
    count, today_open = 0, False
    for day in days:
        if day.date > today or not day.planned:
            continue
        if day.broken:
            break
        if day.open:
            today_open = today_open or day.date == today
            continue
        count += 1
    return Streak(days=count, today_open=today_open)


def dose_streak(patient: Patient, now: dt.datetime) -> Streak:
    """The patient's streak at ``now`` (1 query: one row per local day with planned doses).

    A streak can run for the whole course, so there is no fixed look-back: the database groups
    all of the patient's planned doses up to today (one patient's days are a few hundred rows
    at most), and the rows, newest first, are read only up to the first breaking day.
    """
    today = now.astimezone(patient.zone).date()
    pending = Q(status=PlannedDose.Status.PENDING)
    rows = (
        PlannedDose.objects.filter(patient=patient, local_date__lte=today)
        .filter(prescription__entered_in_error_at__isnull=True)
        .exclude(status=PlannedDose.Status.CANCELLED)
        .order_by()
        .values("local_date")
        .annotate(
            planned=Count("id"),
            broken=Count("id", filter=Q(status__in=BREAKS) | (pending & Q(deadline__lt=now))),
            open=Count("id", filter=pending & Q(deadline__gte=now)),
        )
        .order_by("-local_date")
        .values_list("local_date", "planned", "broken", "open")
    )
    return streak_from_days((DayTally(*row) for row in rows.iterator()), today)
