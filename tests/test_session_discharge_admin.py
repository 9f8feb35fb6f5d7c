"""Early discharge on the admin's session page (issue 18): the nurse records the discharge on the
session's change form, as in clinic, and the page warns at 119 minutes from the first device and
not at exactly 120 (§1 discharge_rule "≥ 120 min since the first device"). The page reads the
one definition, ``InClinicSession.discharged_early``, through the service's discharge warnings.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from tests.test_admin_scoping import admin_url
from tests.test_ketamine_admin import resubmit
from tests.test_ketamine_sessions import FULL_MONITORING, dosed_session, esketamine_course
from tracker.models import InClinicSession

pytestmark = pytest.mark.django_db

EARLY = "Discharged after 119 min of observation, before the minimum (120 min from the first device)."


def local(value: dt.datetime) -> str:
    """A ``datetime-local`` value in the clinic's zone, as the browser sends it."""
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize(("minutes", "warned"), [(119, True), (120, False)])
def test_discharge_on_the_session_form_warns_only_before_120_minutes(client, patient, clinician, minutes, warned):
    rx = esketamine_course(patient, clinician, start=(timezone.localdate() - dt.timedelta(days=14)).isoformat())
    session = dosed_session(rx, clinician, day=None, first=local(timezone.now() - dt.timedelta(days=2)))
    first = session.first_device_at
    client.force_login(clinician.user)
    url = admin_url("change", "inclinicsession", session.pk)
    monitoring = {name: value for name, value in FULL_MONITORING.items() if value is not None}
    response = resubmit(
        client,
        url,
        **{name: "on" if value is True else str(value) for name, value in monitoring.items()},
        bp_40min_at=local(first + dt.timedelta(minutes=40)),
        discharge_at=local(first + dt.timedelta(minutes=minutes)),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    session.refresh_from_db()
    assert session.status == InClinicSession.Status.COMPLETED
    assert session.observation_minutes == minutes
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert (EARLY in warnings) is warned, warnings
    assert not any("before the minimum" in w for w in warnings if w != EARLY)
