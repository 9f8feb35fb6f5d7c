"""Preset skip reasons chosen in the portal are counted on the clinician's timeline (issue 15)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.test_portal_support import course, give_login, signed_in
from tracker.models import PlannedDose

pytestmark = pytest.mark.django_db


def test_the_weekly_dose_line_counts_skips_by_reason(client, patient, clinician):
    rx = course(patient, clinician, days_ago=3, times=("08:00",))
    doses = list(PlannedDose.objects.filter(prescription=rx, due_at__lte=timezone.now()).order_by("due_at"))[:3]
    portal = signed_in(client, give_login(patient, "pat"))
    for dose, choice in zip(doses, ("side_effects", "forgot", "side_effects"), strict=True):
        response = portal.post(reverse("portal:log_dose", args=[dose.pk]), {"action": "skipped", "skip_choice": choice})
        assert response.status_code == 302

    staff = Client()
    staff.force_login(clinician.user)
    html = staff.get(reverse("admin:tracker_patient_timeline", args=[patient.pk])).content.decode()
    assert "3 skipped (2 side effects, 1 forgot)" in html
