"""Starting an in-clinic session from its planned session, with the patient on the page and times labelled."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from tests import factories
from tracker import scheduling
from tracker.models import PlannedDose
from tracker.services.prescriptions import ScheduleSpec, prescribe

NOW = dt.datetime(2026, 3, 30, 8, 0, tzinfo=dt.UTC)  # Monday, 09:00 in London (BST since 29 March)


@pytest.fixture(autouse=True)
def frozen(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)


def esketamine_course(patient, clinician):
    rx = prescribe(
        patient=patient,
        drug=factories.drug("esketamine"),
        dose=Decimal("84"),
        start_date=dt.date(2026, 3, 2),
        prescriber=clinician,
        indication="Treatment-resistant depression",
        schedules=[ScheduleSpec(kind="weekdays", times_of_day=("10:00",), weekdays=(0, 3))],
        now=dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC),
    )
    scheduling.extend_horizon(now=NOW)  # beat keeps the plan 14 days ahead of today
    return rx


@pytest.fixture
def two_patients(clinic, clinician):
    """Two patients on the same esketamine 84 mg: the nurse must be able to tell them apart."""
    ann = factories.PatientFactory(
        clinic=clinic, given_name="Ann", family_name="Able", record_number="N-1", timezone="Europe/London"
    )
    ben = factories.PatientFactory(
        clinic=clinic, given_name="Ben", family_name="Baker", record_number="N-2", timezone="Europe/London"
    )
    return esketamine_course(ann, clinician), esketamine_course(ben, clinician)


@pytest.fixture
def nurse(client, clinic):
    member = factories.ClinicianFactory(clinic=clinic, role="nurse", user__username="nurse-north")
    client.force_login(member.user)
    return client


def todays(rx) -> PlannedDose:
    return PlannedDose.objects.get(prescription=rx, local_date=dt.date(2026, 3, 30))


def test_todays_sessions_lists_each_patient_with_a_start_link_in_local_time(nurse, two_patients, other_patient):
    ann_rx, ben_rx = two_patients
    other_rx = esketamine_course(other_patient, factories.ClinicianFactory(clinic=other_patient.clinic))
    content = nurse.get(reverse("admin:tracker_inclinicsession_today")).content.decode()
    for rx in (ann_rx, ben_rx):
        assert str(rx.patient) in content
        assert f"?planned_dose={todays(rx).pk}" in content
    # 10:00 on the London wall clock, in summer time since the day before yesterday.
    assert "Mon 30 Mar 2026, 10:00 BST (Europe/London)" in content
    assert str(other_rx.patient) not in content  # another clinic's patients never appear


def test_start_from_the_planned_session_shows_the_patient_and_fills_the_form(nurse, two_patients):
    ann_rx, _ = two_patients
    planned = todays(ann_rx)
    response = nurse.get(reverse("admin:tracker_inclinicsession_add") + f"?planned_dose={planned.pk}")
    content = response.content.decode()
    form = response.context["adminform"].form
    assert form.initial["planned_dose"] == planned.pk and form.initial["prescription"] == ann_rx.pk
    assert "Ann Able" in content and "N-1" in content and "Esketamine (nasal) 84 mg" in content
    assert "planned Mon 30 Mar 2026, 10:00 BST (Europe/London)" in content
    # Choices name the patient, so two courses of esketamine 84 mg are not mixed up.
    labels = [label for _, label in form.fields["prescription"].choices]
    assert "Able, Ann (N-1) — Esketamine (nasal) 84 mg" in labels
    assert "Baker, Ben (N-2) — Esketamine (nasal) 84 mg" in labels


def test_times_are_one_labelled_input_that_names_its_zone(nurse, two_patients):
    ann_rx, _ = two_patients
    content = nurse.get(
        reverse("admin:tracker_inclinicsession_add") + f"?planned_dose={todays(ann_rx).pk}"
    ).content.decode()
    assert 'type="datetime-local" name="bp_before_at"' in content
    assert 'name="bp_before_at_0"' not in content  # no unlabelled split date/time pair
    # The clinic's zone (Clinic.timezone, Europe/London by default), named on the page and the field.
    assert "Times on this page are in Europe/London." in content
    assert "Time in Europe/London." in content


def test_a_planned_session_of_another_clinic_is_not_prefilled(client, other_clinic, two_patients):
    stranger = factories.ClinicianFactory(clinic=other_clinic, role="nurse", user__username="nurse-south")
    client.force_login(stranger.user)
    ann_rx, _ = two_patients
    response = client.get(reverse("admin:tracker_inclinicsession_add") + f"?planned_dose={todays(ann_rx).pk}")
    assert "planned_dose" not in response.context["adminform"].form.initial
    assert "Ann Able" not in response.content.decode()


def test_the_session_list_links_to_todays_sessions(nurse):
    content = nurse.get(reverse("admin:tracker_inclinicsession_changelist")).content.decode()
    assert reverse("admin:tracker_inclinicsession_today") in content


def test_an_outpatient_without_rems_enrolment_is_refused_on_the_form_saying_what_is_missing(
    nurse, clinic, two_patients
):
    ann_rx, _ = two_patients
    ann = ann_rx.patient
    ann.rems_enrolled_on = None
    ann.save()
    nurse_member = factories.ClinicianFactory._meta.model.objects.get(user__username="nurse-north")
    planned = todays(ann_rx)
    data = {
        "prescription": ann_rx.pk,
        "planned_dose": planned.pk,
        "administered_by": nurse_member.pk,
        "care_setting": "outpatient",
        "bp_before_systolic": "",
        "bp_before_diastolic": "",
        "bp_before_at": "",
    }
    response = nurse.post(reverse("admin:tracker_inclinicsession_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["care_setting"]
    assert "Ann Able is not enrolled in the Spravato REMS" in errors[0]
    # The form pre-filled the setting from the last session (none yet: outpatient).
    page = nurse.get(reverse("admin:tracker_inclinicsession_add") + f"?planned_dose={planned.pk}")
    assert page.context["adminform"].form.initial["care_setting"] == "outpatient"
    # As an inpatient the session starts: §1 asks no enrolment there. The nurse confirms the preparation.
    started = nurse.post(
        reverse("admin:tracker_inclinicsession_add"),
        {**data, "care_setting": "inpatient", "preparation_confirmed": "true"},
    )
    assert started.status_code == 302
    from tracker.models import InClinicSession

    assert InClinicSession.objects.get(patient=ann).preparation_confirmed is True


@pytest.mark.parametrize(
    ("typed", "stored_utc"),
    [
        ("2026-03-28T10:00", dt.datetime(2026, 3, 28, 10, 0, tzinfo=dt.UTC)),  # GMT, the day before
        ("2026-03-29T10:00", dt.datetime(2026, 3, 29, 9, 0, tzinfo=dt.UTC)),  # BST, the morning after
    ],
)
def test_a_time_is_typed_and_shown_on_the_clinics_wall_clock_across_the_spring_change(
    nurse, two_patients, typed, stored_utc
):
    """The clinic is in London: 10:00 typed is 10:00 on the clinic's clock, GMT or BST, stored in UTC."""
    from tracker.models import InClinicSession
    from tracker.services.sessions import start_session

    ann_rx, _ = two_patients
    member = factories.ClinicianFactory._meta.model.objects.get(user__username="nurse-north")
    session = start_session(prescription=ann_rx, administered_by=member, now=NOW).session
    url = reverse("admin:tracker_inclinicsession_change", args=[session.pk])
    form = nurse.get(url).context["adminform"].form
    data = {name: form[name].value() or "" for name in ("bp_before_systolic", "bp_before_diastolic")}
    response = nurse.post(
        url, {**data, "bp_before_systolic": "130", "bp_before_diastolic": "80", "bp_before_at": typed}
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert InClinicSession.objects.get(pk=session.pk).bp_before_at == stored_utc
    assert f'value="{typed}"' in nurse.get(url).content.decode()  # shown back on the same wall clock


def test_a_time_that_never_happened_on_the_clinics_clock_is_refused_naming_the_zone(nurse, two_patients):
    from tracker.services.sessions import start_session

    ann_rx, _ = two_patients
    member = factories.ClinicianFactory._meta.model.objects.get(user__username="nurse-north")
    session = start_session(prescription=ann_rx, administered_by=member, now=NOW).session
    url = reverse("admin:tracker_inclinicsession_change", args=[session.pk])
    response = nurse.post(
        url, {"bp_before_systolic": "130", "bp_before_diastolic": "80", "bp_before_at": "2026-03-29T01:30"}
    )
    assert response.status_code == 200
    (message,) = response.context["adminform"].form.errors["bp_before_at"]
    assert "Europe/London" in message


def test_a_nasal_session_shows_only_its_routes_fields(nurse, two_patients):
    from tracker.services.sessions import start_session

    ann_rx, _ = two_patients
    member = factories.ClinicianFactory._meta.model.objects.get(user__username="nurse-north")
    session = start_session(prescription=ann_rx, administered_by=member, now=NOW).session
    form = nurse.get(reverse("admin:tracker_inclinicsession_change", args=[session.pk])).context["adminform"].form
    assert "devices" in form.fields
    assert not {"dose_mg_per_kg", "infusion_minutes"} & set(form.fields)  # IV ketamine's, not esketamine's


def test_the_next_session_carries_over_the_devices_and_shows_the_concomitant_medicines(nurse, two_patients, clinician):
    """What carries over from the last session (§1): the devices, pre-filled for the nurse to confirm."""
    from tracker.services.sessions import record_dosing, start_session

    ann_rx, _ = two_patients
    ann = ann_rx.patient
    member = factories.ClinicianFactory._meta.model.objects.get(user__username="nurse-north")
    first = start_session(
        prescription=ann_rx,
        administered_by=member,
        bp_before_systolic=128,
        bp_before_diastolic=80,
        now=NOW - dt.timedelta(days=4),
    ).session
    record_dosing(
        session=first,
        first_device_at=NOW - dt.timedelta(days=4),
        devices=3,
        lot_number="L1",
        now=NOW - dt.timedelta(days=4),
    )
    prescribe(
        patient=ann,
        drug=factories.drug("lorazepam"),
        dose=Decimal("1"),
        start_date=dt.date(2026, 3, 1),
        prescriber=clinician,
        now=dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC),
    )
    second = start_session(prescription=ann_rx, administered_by=member, now=NOW).session
    response = nurse.get(reverse("admin:tracker_inclinicsession_change", args=[second.pk]))
    assert response.context["adminform"].form.initial["devices"] == 3
    content = response.content.decode()
    assert "3 at the last session, carried over: confirm or change it." in content
    assert "Concomitant medicines today (REMS form): Benzodiazepines: Lorazepam" in content
