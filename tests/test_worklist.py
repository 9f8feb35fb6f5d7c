"""The flag worklist on the admin's landing page: order, counts, filters, actions, isolation, queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from tests import factories
from tracker.admin.worklist import PAGE_SIZE
from tracker.models import Flag, FlagKind, Severity

T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
INDEX = reverse("admin:index")
# These tests read the flags one by one (?view=flags); the default, by patient, is tests/test_triage.py.
FLAGS_VIEW = {"view": "flags"}


def make_flag(patient, severity: int, *, hours: int = 0, kind: str = FlagKind.DOSE_MISSED, **fields) -> Flag:
    """A flag raised ``hours`` after T0 (created directly: these tests are about reading and acting)."""
    return Flag.objects.create(
        patient=patient,
        kind=kind,
        severity=severity,
        dedup_key=f"test:{patient.pk}:{kind}:{severity}:{hours}:{Flag.objects.count()}",
        message=f"{Severity(severity).label} thing happened.",
        action="Look at it.",
        raised_at=T0 + dt.timedelta(hours=hours),
        **fields,
    )


def ack_url(flag: Flag) -> str:
    return reverse("admin:tracker_flag_acknowledge", args=[flag.pk])


def resolve_url(flag: Flag) -> str:
    return reverse("admin:tracker_flag_resolve", args=[flag.pk])


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def north(client, clinician):
    client.force_login(clinician.user)
    return client


class TestOrderAndCounts:
    def test_most_severe_first_then_oldest_and_only_unresolved_of_own_clinic(self, north, patient, other_patient):
        warning_old = make_flag(patient, Severity.WARNING, hours=1)
        urgent_new = make_flag(patient, Severity.URGENT, hours=5)
        urgent_old = make_flag(patient, Severity.URGENT, hours=2)
        critical = make_flag(patient, Severity.CRITICAL, hours=9)
        acknowledged_info = make_flag(patient, Severity.INFO, hours=0, status=Flag.Status.ACKNOWLEDGED)
        make_flag(patient, Severity.CRITICAL, hours=3, status=Flag.Status.RESOLVED, resolved_at=T0)
        make_flag(other_patient, Severity.CRITICAL, hours=0)

        response = north.get(INDEX, FLAGS_VIEW)

        assert response.status_code == 200
        assert response.context["flags"] == [critical, urgent_old, urgent_new, warning_old, acknowledged_info]
        assert response.context["severity_counts"] == [
            ("Critical", 40, 1),
            ("Urgent", 30, 2),
            ("Warning", 20, 1),
            ("Info", 10, 1),
        ]
        content = response.content.decode()
        assert content.index(f'data-flag="{critical.pk}"') < content.index(f'data-flag="{urgent_old.pk}"')
        assert other_patient.record_number not in content

    def test_the_app_list_and_disclaimer_stay(self, north, patient):
        content = north.get(INDEX, FLAGS_VIEW).content.decode()
        assert "Patients to look at" in content
        assert reverse("admin:tracker_patient_changelist") in content
        assert "does not make clinical decisions" in content

    def test_staff_without_a_clinic_sees_no_worklist(self, client, patient):
        make_flag(patient, Severity.CRITICAL)
        client.force_login(factories.UserFactory(username="staff-only", is_staff=True))
        response = client.get(INDEX, FLAGS_VIEW)
        assert response.status_code == 200
        assert response.context["worklist_visible"] is False
        assert patient.record_number not in response.content.decode()


class TestFilters:
    @pytest.fixture
    def flags(self, patient, clinic, clinician):
        second = factories.PatientFactory(clinic=clinic, record_number="N-0002")
        return {
            "urgent_missed": make_flag(patient, Severity.URGENT, kind=FlagKind.DOSE_MISSED, assigned_to=clinician),
            "warning_se": make_flag(patient, Severity.WARNING, kind=FlagKind.SE_BURDEN, hours=1),
            "critical_other_patient": make_flag(
                second, Severity.CRITICAL, kind=FlagKind.SCALE_SUICIDALITY, status=Flag.Status.ACKNOWLEDGED
            ),
        }

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"kind": FlagKind.SE_BURDEN}, ["warning_se"]),
            ({"severity": "30"}, ["urgent_missed"]),
            ({"assigned": "none"}, ["critical_other_patient", "warning_se"]),
            ({"status": "acknowledged"}, ["critical_other_patient"]),
        ],
    )
    def test_filter(self, north, flags, query, expected):
        response = north.get(INDEX, {**FLAGS_VIEW, **query})
        assert response.context["flags"] == [flags[name] for name in expected]

    def test_filter_by_patient_and_assigned_clinician(self, north, flags, patient, clinician):
        response = north.get(INDEX, {**FLAGS_VIEW, "patient": patient.pk, "assigned": clinician.pk})
        assert response.context["flags"] == [flags["urgent_missed"]]

    def test_the_patient_filter_names_the_patient_and_links_back_to_all(self, north, flags, patient):
        response = north.get(INDEX, {**FLAGS_VIEW, "patient": patient.pk, "severity": "20"})
        assert response.context["flags"] == [flags["warning_se"]]
        content = response.content.decode()
        timeline = reverse("admin:tracker_patient_timeline", args=[patient.pk])
        assert f'Only the flags of <a href="{timeline}">{patient}</a>' in content
        assert 'href="?view=flags&amp;severity=20">All patients</a>' in content
        # The next filter keeps the patient: the id rides along in a hidden field.
        assert f'<input type="hidden" name="patient" value="{patient.pk}"' in content

    def test_a_patient_of_another_clinic_is_not_a_valid_filter(self, north, flags, other_patient):
        other_flag = make_flag(other_patient, Severity.CRITICAL)
        response = north.get(INDEX, {**FLAGS_VIEW, "patient": other_patient.pk})
        form = response.context["filter_form"]
        assert form.errors["patient"] == [
            f"Patient: no patient of your clinic has the id {other_patient.pk}. "
            "Search by record number or name instead."
        ]
        # The error is shown, and the list is this clinic's whole worklist, never the other patient's flags.
        content = response.content.decode()
        assert f"no patient of your clinic has the id {other_patient.pk}" in content
        assert response.context["chosen_patient"] is None
        assert set(response.context["flags"]) == set(flags.values())
        assert f'data-flag="{other_flag.pk}"' not in content
        assert other_patient.record_number not in content
        assert 'name="patient"' not in content  # the refused id is not carried into the next filter

    @pytest.mark.parametrize("value", ["999999", "abc", "-1"])
    def test_an_unknown_patient_id_gets_the_same_error(self, north, flags, value):
        response = north.get(INDEX, {**FLAGS_VIEW, "patient": value})
        assert response.status_code == 200
        assert response.context["filter_form"].errors["patient"] == [
            f"Patient: no patient of your clinic has the id {value}. Search by record number or name instead."
        ]

    def test_garbled_severity_is_a_form_error_not_a_crash(self, north, flags):
        response = north.get(INDEX, {**FLAGS_VIEW, "severity": "loud"})
        assert response.status_code == 200
        assert "severity" in response.context["filter_form"].errors
        assert len(response.context["flags"]) == 3


class TestPatientSearch:
    """``q``: every word must start the record number, the family or given name, or a part of a name."""

    @pytest.fixture
    def people(self, clinic, patient, other_patient):
        patient.given_name, patient.family_name = "Ann", "Smith"
        patient.save()
        other_patient.given_name, other_patient.family_name = "Ann", "Smith"  # the same name at the other clinic
        other_patient.save()
        people = {
            "ann_smith": patient,
            "anna_smithers": factories.PatientFactory(
                clinic=clinic, given_name="Anna", family_name="Smithers", record_number="N-0200"
            ),
            "bo_jones": factories.PatientFactory(
                clinic=clinic, given_name="Bo", family_name="Carter-Jones", record_number="N-0300"
            ),
        }
        for hours, person in enumerate(people.values()):
            make_flag(person, Severity.WARNING, hours=hours)
        make_flag(other_patient, Severity.CRITICAL)
        return people

    @pytest.mark.parametrize(
        ("q", "expected"),
        [
            ("smith", ["ann_smith", "anna_smithers"]),  # family name prefix, any case
            ("ANN", ["ann_smith", "anna_smithers"]),  # given name prefix
            ("Smith, Ann", ["ann_smith", "anna_smithers"]),  # "family, given" as printed on the worklist
            ("anna smi", ["anna_smithers"]),  # every word must match
            ("jones", ["bo_jones"]),  # the second part of a double-barrelled name
            ("n-0001", ["ann_smith"]),  # record number prefix, any case
            ("N-0", ["ann_smith", "anna_smithers", "bo_jones"]),
            ("mith", []),  # a prefix, not a substring
        ],
    )
    def test_search(self, north, people, q, expected):
        response = north.get(INDEX, {**FLAGS_VIEW, "q": q})
        assert [f.patient for f in response.context["flags"]] == [people[name] for name in expected]

    def test_search_results_keep_the_worklist_order(self, north, people):
        urgent = make_flag(people["anna_smithers"], Severity.URGENT, hours=9)
        critical = make_flag(people["ann_smith"], Severity.CRITICAL, hours=20)
        response = north.get(INDEX, {**FLAGS_VIEW, "q": "smi"})
        flags = response.context["flags"]
        assert flags[:2] == [critical, urgent]
        assert [f.severity for f in flags] == sorted((f.severity for f in flags), reverse=True)
        warnings = [f for f in flags if f.severity == Severity.WARNING]
        assert warnings == sorted(warnings, key=lambda f: f.raised_at)

    def test_search_never_reaches_another_clinics_patient(self, north, people, other_patient):
        other_flag = other_patient.flags.get()
        response = north.get(INDEX, {**FLAGS_VIEW, "q": "Ann Smith"})
        assert [f.patient for f in response.context["flags"]] == [people["ann_smith"], people["anna_smithers"]]
        assert f'data-flag="{other_flag.pk}"' not in response.content.decode()
        response = north.get(INDEX, {**FLAGS_VIEW, "q": other_patient.record_number})
        assert response.context["flags"] == []
        assert f'data-flag="{other_flag.pk}"' not in response.content.decode()

    def test_no_match_says_so(self, north, people):
        content = north.get(INDEX, {**FLAGS_VIEW, "q": "Zed"}).content.decode()
        assert "No unresolved flags match these filters." in content

    def test_the_page_lists_no_patients_beyond_its_flags(self, north, people, clinic):
        # The patient filter used to be a <select> of every flagged patient: 9,904 options at a
        # 10,000-patient clinic. A patient whose flags are not on this page is not named on it.
        unseen = factories.PatientFactory(clinic=clinic, given_name="Ulla", family_name="Unseen")
        make_flag(unseen, Severity.WARNING, hours=1)
        content = north.get(INDEX, {**FLAGS_VIEW, "severity": "40"}).content.decode()
        assert "Unseen" not in content
        assert 'type="search" name="q"' in content
        assert '<select name="patient"' not in content


class TestPages:
    """No "page N of M": the page reads one row past its end to know if there is a next page."""

    @pytest.fixture
    def many(self, patient):
        Flag.objects.bulk_create(
            Flag(
                patient=patient,
                kind=FlagKind.DOSE_MISSED,
                severity=Severity.WARNING,
                dedup_key=f"test:page:{i}",
                message="Missed.",
                action="Call.",
                raised_at=T0 + dt.timedelta(minutes=i),
            )
            for i in range(PAGE_SIZE + 1)
        )
        return list(Flag.objects.order_by("raised_at"))

    def test_first_page_then_next(self, north, many):
        first = north.get(INDEX, FLAGS_VIEW)
        assert first.context["flags"] == many[:PAGE_SIZE]
        assert f"Flags 1–{PAGE_SIZE}" in first.content.decode()
        assert 'page=2">Next</a>' in first.content.decode()
        second = north.get(INDEX, {**FLAGS_VIEW, "page": "2"})
        assert second.context["flags"] == many[PAGE_SIZE:]
        content = second.content.decode()
        assert f"Flags {PAGE_SIZE + 1}–{PAGE_SIZE + 1}" in content
        assert "Next</a>" not in content
        assert 'page=1">Previous</a>' in content

    @pytest.mark.parametrize("page", ["abc", "0", "-3", ""])
    def test_a_garbled_page_is_the_first(self, north, many, page):
        assert north.get(INDEX, {**FLAGS_VIEW, "page": page}).context["flags"] == many[:PAGE_SIZE]

    def test_an_impossible_page_number_is_refused_saying_so(self, north, many):
        # Past any 64-bit id: the hostile-input guard answers 400 before a query (tracker/middleware.py).
        response = north.get(INDEX, {**FLAGS_VIEW, "page": "1" + "0" * 30})
        assert response.status_code == 400
        assert "The value of page is too large a number" in response.content.decode()

    @pytest.mark.parametrize("page", ["3", "1" + "0" * 15])
    def test_a_page_past_the_end_says_so(self, north, many, page):
        response = north.get(INDEX, {**FLAGS_VIEW, "page": page, "severity": "20"})
        assert response.status_code == 200
        assert response.context["flags"] == []
        assert "No flags on page" in response.content.decode()
        assert 'href="?view=flags&amp;severity=20">Back to the first page</a>' in response.content.decode()


class TestOneClickActions:
    def test_acknowledge(self, north, patient, clinician):
        flag = make_flag(patient, Severity.URGENT)
        response = north.post(ack_url(flag), {"next": f"{INDEX}?severity=30"})
        assert response.status_code == 302
        assert response["Location"] == f"{INDEX}?severity=30"
        flag.refresh_from_db()
        assert (flag.status, flag.acknowledged_by) == (Flag.Status.ACKNOWLEDGED, clinician.user)

    def test_acknowledge_is_post_only(self, north, patient):
        flag = make_flag(patient, Severity.URGENT)
        assert north.get(ack_url(flag)).status_code == 405

    def test_off_site_next_is_ignored(self, north, patient):
        flag = make_flag(patient, Severity.WARNING)
        response = north.post(ack_url(flag), {"next": "https://evil.example/"})
        assert response["Location"] == INDEX

    def test_resolving_an_urgent_flag_needs_a_note(self, north, patient):
        flag = make_flag(patient, Severity.URGENT)
        response = north.post(resolve_url(flag), {"note": "  "})
        assert response.status_code == 302
        flag.refresh_from_db()
        assert flag.status == Flag.Status.OPEN
        assert any("A note is required to close an urgent flag." in text for text in texts(response))

        response = north.post(resolve_url(flag), {"note": "Called the patient; dose taken late."}, follow=True)
        flag.refresh_from_db()
        assert flag.status == Flag.Status.RESOLVED
        assert flag.resolution_note == "Called the patient; dose taken late."
        assert flag not in response.context["flags"]

    def test_a_warning_resolves_without_a_note(self, north, patient):
        flag = make_flag(patient, Severity.WARNING)
        north.post(resolve_url(flag))
        flag.refresh_from_db()
        assert flag.status == Flag.Status.RESOLVED

    def test_csrf_is_enforced(self, clinician, patient):
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(clinician.user)
        flag = make_flag(patient, Severity.URGENT)
        assert strict.post(ack_url(flag)).status_code == 403
        flag.refresh_from_db()
        assert flag.status == Flag.Status.OPEN

    def test_a_manager_sees_the_worklist_but_cannot_act(self, client, clinic, patient):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")
        client.force_login(manager.user)
        flag = make_flag(patient, Severity.URGENT)
        response = client.get(INDEX, FLAGS_VIEW)
        assert response.context["flags"] == [flag]
        assert response.context["can_act"] is False
        assert client.post(ack_url(flag)).status_code == 403


class TestBulk:
    def test_bulk_acknowledge(self, north, patient):
        flags = [make_flag(patient, Severity.WARNING, hours=h) for h in range(3)]
        already = make_flag(patient, Severity.INFO, status=Flag.Status.ACKNOWLEDGED)
        response = north.post(
            reverse("admin:tracker_flag_bulk"),
            {"action": "acknowledge", "flag": [f.pk for f in [*flags, already]]},
        )
        assert {f.status for f in Flag.objects.filter(pk__in=[f.pk for f in flags])} == {Flag.Status.ACKNOWLEDGED}
        messages = texts(response)
        assert "Acknowledged 3 flags." in messages
        assert any("Only an open flag can be acknowledged." in m for m in messages)

    def test_bulk_resolve_without_note_keeps_the_urgent_ones(self, north, patient):
        warning = make_flag(patient, Severity.WARNING)
        urgent = make_flag(patient, Severity.URGENT)
        response = north.post(
            reverse("admin:tracker_flag_bulk"), {"action": "resolve", "note": "", "flag": [warning.pk, urgent.pk]}
        )
        warning.refresh_from_db()
        urgent.refresh_from_db()
        assert (warning.status, urgent.status) == (Flag.Status.RESOLVED, Flag.Status.OPEN)
        assert any("A note is required to close an urgent flag." in m for m in texts(response))

    def test_bulk_resolve_with_a_note(self, north, patient):
        flags = [make_flag(patient, Severity.CRITICAL, hours=h) for h in range(2)]
        north.post(
            reverse("admin:tracker_flag_bulk"),
            {"action": "resolve", "note": "Reviewed in clinic.", "flag": [f.pk for f in flags]},
        )
        assert set(Flag.objects.values_list("status", "resolution_note")) == {
            (Flag.Status.RESOLVED, "Reviewed in clinic.")
        }

    def test_bulk_ignores_ids_that_are_not_plain_numbers(self, north, patient):
        flag = make_flag(patient, Severity.WARNING)
        response = north.post(
            reverse("admin:tracker_flag_bulk"),
            {"action": "acknowledge", "flag": ["²", "9" * 30, "-1", f" {flag.pk}", str(flag.pk)]},
        )
        assert response.status_code == 302
        flag.refresh_from_db()
        assert flag.status == Flag.Status.ACKNOWLEDGED
        assert "Acknowledged 1 flag." in texts(response)


class TestOtherClinic:
    def test_actions_on_another_clinics_flag_answer_404(self, north, other_patient):
        flag = make_flag(other_patient, Severity.URGENT)
        assert north.post(ack_url(flag)).status_code == 404
        assert north.post(resolve_url(flag), {"note": "not mine"}).status_code == 404
        north.post(reverse("admin:tracker_flag_bulk"), {"action": "resolve", "note": "x", "flag": [flag.pk]})
        flag.refresh_from_db()
        assert flag.status == Flag.Status.OPEN


@pytest.mark.parametrize("count", [3, 30])
@pytest.mark.parametrize("filtered_by", ["nothing", "search", "patient"])
def test_worklist_query_count_does_not_grow_with_flags(
    client, clinic, clinician, count, filtered_by, django_assert_num_queries
):
    for i in range(count):
        patient = factories.PatientFactory(
            clinic=clinic, responsible_clinician=clinician, given_name="Ann", family_name=f"Smith {i}"
        )
        make_flag(patient, Severity.values[i % 4], hours=i, assigned_to=clinician if i % 2 else None)
    query = {"nothing": {}, "search": {"q": "smith ann"}, "patient": {"patient": patient.pk}}[filtered_by]
    client.force_login(clinician.user)
    with django_assert_num_queries(11 if filtered_by == "patient" else 10):
        # 1. the session
        # 2. the logged-in user
        # 3. the user's clinic membership (cached on the request)
        # 4. the user's own permissions
        # 5. the user's group permissions
        # 6. the clinic's active clinicians, for the "assigned to" filter
        # (7. with ?patient=: that patient, looked up among the clinic's patients)
        # 7. the page of flags with patient and assigned clinician (and their user), one row past the page
        # 8. the counts by severity, one aggregate
        # 9. the patients with open work, one aggregate
        # 10. the open response and remission milestones, one count
        # No list of flagged patients and no COUNT of every match (see TestPatientSearch, TestPages).
        response = client.get(INDEX, {**FLAGS_VIEW, **query})
    assert response.context["filter_form"].errors == {}
    assert len(response.context["flags"]) == (1 if filtered_by == "patient" else count)


@pytest.mark.django_db
def test_resolving_leaves_an_audit_trail_clinicians_can_read(north, patient, clinician):
    flag = make_flag(patient, Severity.URGENT)
    north.post(resolve_url(flag), {"note": "Called the patient."})
    latest = flag.history.latest()
    assert (latest.history_user, latest.status, latest.resolution_note) == (
        clinician.user,
        "resolved",
        "Called the patient.",
    )
    page = north.get(reverse("admin:tracker_flag_history", args=[flag.pk])).content.decode()
    assert clinician.user.username in page or clinician.user.get_full_name() in page
