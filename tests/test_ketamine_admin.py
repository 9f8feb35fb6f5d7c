"""The in-clinic session admin: the BP warning, the decision it requires, clinic scoping, no delete."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.forms import CheckboxInput
from django.urls import reverse
from django.utils import timezone

from tests.factories import drug
from tests.test_admin_scoping import admin_url
from tracker.models import InClinicSession
from tracker.services.prescriptions import ScheduleSpec, prescribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def rx(patient, clinician):
    return prescribe(
        patient=patient,
        drug=drug("esketamine"),
        dose=Decimal("56"),
        start_date=timezone.localdate() - dt.timedelta(days=7),
        prescriber=clinician,
        schedules=[ScheduleSpec(kind="weekdays", times_of_day=("10:00",), weekdays=(0, 3))],
    )


def split(prefix: str, value: dt.datetime) -> dict[str, str]:
    """The one labelled local date-and-time input (``datetime-local``), as a browser sends it."""
    return {prefix: timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")}


def test_add_with_high_bp_warns_to_consider_withholding(client, clinician, rx):
    client.force_login(clinician.user)
    before = timezone.now() - dt.timedelta(hours=3)
    response = client.post(
        admin_url("add", "inclinicsession"),
        {
            "prescription": rx.pk,
            "planned_dose": "",
            "administered_by": clinician.pk,
            "care_setting": "outpatient",
            "bp_before_systolic": 150,
            "bp_before_diastolic": 95,
            **split("bp_before_at", before),
        },
    )
    session = InClinicSession.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert (session.patient, session.route, session.status) == (rx.patient, "nasal", "started")
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("consider withholding the dose" in t for t in texts)
    page = client.get(admin_url("change", "inclinicsession", session.pk)).content.decode()
    assert 'role="alert"' in page and "above the label threshold of 140/90 mmHg" in page


def test_change_refuses_dosing_until_a_bp_decision_is_recorded(client, clinician, rx):
    from tracker.services.sessions import start_session

    client.force_login(clinician.user)
    start = timezone.now() - dt.timedelta(hours=3)
    session = start_session(
        prescription=rx, administered_by=clinician, bp_before_systolic=150, bp_before_diastolic=95, bp_before_at=start
    ).session
    url = admin_url("change", "inclinicsession", session.pk)
    form = {
        "bp_before_systolic": 150,
        "bp_before_diastolic": 95,
        **split("bp_before_at", start),
        "devices": 2,
        **split("first_device_at", start + dt.timedelta(minutes=10)),
    }
    response = client.post(url, form)
    assert response.status_code == 200
    assert "consider withholding the dose" in response.content.decode()
    assert InClinicSession.objects.get().first_device_at is None

    response = client.post(url, {**form, "bp_decision": "proceeded", "bp_decision_reason": "Repeat reading 138/86"})
    assert response.status_code == 302
    saved = InClinicSession.objects.get()
    assert (saved.devices, saved.bp_decision, saved.bp_decision_by) == (2, "proceeded", clinician)


def test_other_clinics_cannot_see_a_session_and_nobody_deletes_one(client, clinician, other_clinician, rx):
    from tracker.services.sessions import start_session

    session = start_session(prescription=rx, administered_by=clinician).session
    client.force_login(other_clinician.user)
    assert client.get(admin_url("change", "inclinicsession", session.pk)).status_code == 404
    client.force_login(clinician.user)
    assert client.get(admin_url("changelist", "inclinicsession")).status_code == 200
    assert client.get(admin_url("delete", "inclinicsession", session.pk)).status_code == 403


def test_prescribing_esketamine_without_two_failed_trials_warns_but_prescribes(client, clinician, patient):
    client.force_login(clinician.user)
    start = timezone.localdate()
    response = client.post(
        reverse("admin:tracker_prescription_prescribe", args=[patient.pk]),
        {
            "drug": str(drug("esketamine").pk),
            "dose": "56",
            "route": "",
            "regimen": "esketamine_phases",
            "weekdays": [str(start.weekday()), str((start.weekday() + 3) % 7)],
            "continuation_every_weeks": "2",
            "times_of_day": "10:00",
            "start_date": start.isoformat(),
            "end_date": "",
            "indication": "Treatment-resistant depression",
        },
    )
    assert response.status_code == 302
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert warnings == [
        "Treatment resistance not confirmed: 0 adequate failed antidepressant trials on record (treatment "
        "resistance needs 2: ≥ 42 days at an adequate dose with < 50% PHQ-9 improvement or marked failed)."
    ]


def resubmit(client, url: str, **changes) -> object:
    """Post the admin's change form back as a browser would: every field as rendered, plus ``changes``."""
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field.widget, CheckboxInput):
            if value:
                data[name] = "on"
            continue
        if value is None:
            continue
        formatted = field.widget.format_value(value)
        data[name] = "" if formatted is None else formatted
    return client.post(url, {**data, **changes})


def test_marking_the_rems_form_sent_in_the_admin_saves_it_and_resolves_its_flag(client, clinician, rx):
    from tests.test_ketamine_sessions import completed_session
    from tracker.models import Flag, FlagKind
    from tracker.rules import ketamine

    ten_days_ago = (timezone.now() - dt.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    session = completed_session(rx, clinician, day=None, first=ten_days_ago)
    ketamine.sweep(now=session.first_device_at + dt.timedelta(days=8))
    flag = Flag.objects.get(kind=FlagKind.ESK_REMS_FORM_OVERDUE)
    client.force_login(clinician.user)
    url = admin_url("change", "inclinicsession", session.pk)
    sent = timezone.localtime(session.first_device_at + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = resubmit(client, url, rems_form_submitted_at=sent)
    assert response.status_code == 302, response.context["adminform"].form.errors
    session.refresh_from_db()
    assert timezone.localtime(session.rems_form_submitted_at).strftime("%Y-%m-%dT%H:%M") == sent
    flag.refresh_from_db()
    assert flag.status == Flag.Status.RESOLVED and flag.resolved_by is None


def test_sign_off_needs_every_field_then_changes_need_an_addendum(client, clinician, rx):
    from tests.test_ketamine_sessions import completed_session, dosed_session
    from tracker.models import SessionAddendum

    client.force_login(clinician.user)
    week_ago = timezone.now() - dt.timedelta(days=7)
    # 1. A dosed session with nothing after dosing: sign-off is refused, naming what is missing.
    open_session = dosed_session(rx, clinician, day=None, first=week_ago.strftime("%Y-%m-%dT%H:%M"))
    url = admin_url("change", "inclinicsession", open_session.pk)
    response = resubmit(client, url, _signoff="Save and sign off")
    assert response.status_code == 302
    notes = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("cannot be signed off yet; still missing: the discharge" in n for n in notes), notes
    open_session.refresh_from_db()
    assert open_session.signed_off_at is None

    # 2. A complete session signs off, with who and when.
    done = completed_session(
        rx, clinician, day=None, first=(week_ago + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    )
    url = admin_url("change", "inclinicsession", done.pk)
    signing = resubmit(client, url, _signoff="Save and sign off")
    assert signing.status_code == 302, signing.context["adminform"].form.errors
    done.refresh_from_db()
    assert done.signed_off_at is not None and done.signed_off_by == clinician

    # 3. A change now needs a reason, and is kept as an addendum with who, when and why.
    refused = resubmit(client, url, spo2_lowest="93")
    assert refused.status_code == 200
    assert "say why it is being changed" in refused.context["adminform"].form.errors["addendum_reason"][0]
    done.refresh_from_db()
    assert done.spo2_lowest != 93
    assert resubmit(client, url, spo2_lowest="93", addendum_reason="Oximeter log read again").status_code == 302
    done.refresh_from_db()
    assert done.spo2_lowest == 93
    (addendum,) = SessionAddendum.objects.filter(session=done)
    assert (addendum.reason, addendum.changed_fields, addendum.recorded_by) == (
        "Oximeter log read again",
        ["spo2_lowest"],
        clinician.user,
    )
    # 4. The REMS form sent after sign-off is not a change to the record: no addendum needed.
    sent = timezone.localtime(timezone.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert resubmit(client, url, rems_form_submitted_at=sent).status_code == 302
    assert SessionAddendum.objects.filter(session=done).count() == 1
