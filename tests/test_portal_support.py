"""Shared set-up for the portal tests: patients with logins and courses that reach today.

Named test_portal_* to sit with the portal tests; it holds helpers only, no tests.
"""

from __future__ import annotations

import datetime as dt

from django.test import Client
from django.utils import timezone

from tests.dosing import daily_course
from tests.factories import UserFactory
from tracker import scheduling
from tracker.models import Patient, Prescription

PASSWORD = "correct-horse-battery-staple"  # the factories' password


def give_login(patient: Patient, username: str):
    """Link a new user to ``patient`` as their portal login."""
    user = UserFactory(username=username)
    patient.user = user
    patient.save(update_fields=["user"])
    return user


def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def local_today(patient: Patient) -> dt.date:
    return timezone.now().astimezone(patient.zone).date()


def course(patient: Patient, clinician, *, days_ago: int = 0, times: tuple[str, ...] = ("08:00", "20:00"), **spec):
    """A course started ``days_ago`` local days ago, planned from its start to the horizon after today."""
    start = local_today(patient) - dt.timedelta(days=days_ago)
    rx = daily_course(patient, clinician, times=times, start=start.isoformat(), **spec)
    scheduling.extend_horizon(now=timezone.now(), schedules=list(rx.schedules.all()))
    return rx


def due_now(patient: Patient, clinician, **spec) -> Prescription:
    """A once-daily course due at the current local minute, so a tap now falls in its §7 window."""
    now = timezone.localtime(timezone.now(), patient.zone)
    return course(patient, clinician, times=(f"{now:%H:%M}",), **spec)


def as_needed(patient: Patient, clinician, *, name: str = "lorazepam", dose: str = "1") -> Prescription:
    return course(patient, clinician, name=name, dose=dose, times=(), kind="prn", prn_max_doses_per_day=2)


def clinic_only(patient: Patient, clinician, **kwargs) -> Prescription:
    """Esketamine on every day, so a clinic session falls on today whatever the weekday."""
    return course(patient, clinician, name="esketamine", dose="56", times=("10:00",), **kwargs)
