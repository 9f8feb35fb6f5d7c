"""The patient's course timeline: events in date order, server-side charts, isolation, query count."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import reverse

from tests import factories
from tests.dosing import at, daily_course
from tests.symptoms import answers_for, fibser, phq9, side_effect
from tracker import charts
from tracker.models import Flag, FlagKind, PlannedDose
from tracker.services.assessments import submit_assessment
from tracker.services.measurements import record_weight
from tracker.services.prescriptions import change_dose
from tracker.services.records import mark_entered_in_error
from tracker.timeline import patient_timeline


def timeline_url(patient) -> str:
    return reverse("admin:tracker_patient_timeline", args=[patient.pk])


def build_course(patient, clinician, *, extra_flags: int = 0, extra_scores: int = 0, baseline: int = 16):
    """Sertraline from 1 June 2026, titrated on 15 June; PHQ-9 16 (or ``baseline``) -> 7 -> 4; FIBSER; a side
    effect; flags."""
    rx = daily_course(patient, clinician, start="2026-06-01")
    # Week 1: six taken, one missed; week 2 all taken (statuses as the dose services leave them).
    week1 = PlannedDose.objects.filter(patient=patient, local_date__lt=dt.date(2026, 6, 8)).order_by("due_at")
    PlannedDose.objects.filter(pk__in=[d.pk for d in week1[:6]]).update(status=PlannedDose.Status.TAKEN)
    PlannedDose.objects.filter(pk=week1[6].pk).update(status=PlannedDose.Status.MISSED)
    PlannedDose.objects.filter(patient=patient, local_date__range=("2026-06-08", "2026-06-14")).update(
        status=PlannedDose.Status.TAKEN
    )
    change_dose(
        prescription=rx,
        new_dose=Decimal("100"),
        effective_date=dt.date(2026, 6, 15),
        reason="Titration: partial response",
        prescriber=clinician,
        now=at("2026-06-14T12:00"),
    )
    phq9(patient, "2026-05-30T10:00", baseline)  # baseline, two days before the start
    phq9(patient, "2026-06-15T10:00", 7)
    phq9(patient, "2026-06-29T10:00", 4)
    for i in range(extra_scores):
        phq9(patient, f"2026-07-{1 + i:02d}T10:00", 5)
        record_weight(patient=patient, weight_kg=Decimal("70"), recorded_by=None, now=at(f"2026-07-{1 + i:02d}T10:00"))
    fibser(patient, "2026-06-08T10:00", 4)
    side_effect(patient, "2026-06-03T10:00", "nausea", "moderate")
    for i in range(1 + extra_flags):
        Flag.objects.create(
            patient=patient,
            kind=FlagKind.SE_BURDEN,
            severity=20,
            dedup_key=f"timeline:{patient.pk}:{i}",
            message="FIBSER burden 4.",
            action="Address the side effect.",
            raised_at=at("2026-06-08T11:00") + dt.timedelta(minutes=i),
        )
    return rx


@pytest.fixture
def north(client, clinician):
    client.force_login(clinician.user)
    return client


class TestTimelineData:
    def test_weeks_summarise_planned_and_taken(self, patient, clinician):
        build_course(patient, clinician)
        timeline = patient_timeline(patient, now=at("2026-06-16T00:00"))
        week1, week2 = timeline.weeks[:2]
        assert (week1.week, week1.planned, week1.taken, week1.missed) == (1, 7, 6, 1)
        assert week1.adherence == pytest.approx(6 / 7)
        assert (week2.planned, week2.taken, week2.adherence) == (7, 7, 1.0)

    def test_events_are_in_date_order_with_both_versions(self, patient, clinician):
        build_course(patient, clinician)
        timeline = patient_timeline(patient, now=at("2026-07-01T00:00"))
        instants = [e.at for e in timeline.events]
        assert instants == sorted(instants)
        titles = [e.title for e in timeline.events if e.kind == "prescription"]
        assert titles == ["Started: Sertraline 50 mg", "Dose changed: Sertraline 100 mg"]
        kinds = {e.kind for e in timeline.events}
        assert {"prescription", "doses", "assessment", "side_effect", "flag"} <= kinds

    def test_summary_comes_from_course_summaries(self, patient, clinician):
        build_course(patient, clinician)
        (summary,) = patient_timeline(patient, now=at("2026-07-01T00:00")).summaries
        outcome = summary.outcomes["phq9"]
        assert (outcome.baseline.total, outcome.latest.total, outcome.response, outcome.remission) == (
            16,
            4,
            True,
            True,
        )


class TestPage:
    def test_renders_charts_with_points_lines_and_table_fallback(self, north, patient, clinician):
        build_course(patient, clinician)
        content = north.get(timeline_url(patient)).content.decode()

        phq = re.search(r'<svg[^>]*id="chart-phq9".*?</svg>', content, re.S).group(0)
        assert 'role="img"' in phq and "<title" in phq and "<desc" in phq
        assert re.findall(r'class="point" data-week="[^"]+" data-value="(\d+)"', phq) == ["16", "7", "4"]
        assert re.findall(r'data-week="([^"]+)" data-value', phq)[0] == "-0.3"  # baseline 2 days before
        assert 'class="ref ref-response" data-value="8"' in phq  # 50 % of the baseline 16
        assert 'class="ref ref-remission" data-value="4"' in phq  # PHQ-9 < 5
        assert 'id="chart-phq9-table"' in content

        adherence = re.search(r'<svg[^>]*id="chart-adherence".*?</svg>', content, re.S).group(0)
        assert re.findall(r'class="bar" data-week="[^"]+" data-value="(\d+)"', adherence)[:2] == ["86", "100"]
        assert 'id="chart-fibser"' in content
        assert "supports clinical judgement; it does not replace it" in content
        assert "Titration: partial response" in content

    def test_dose_changes_are_marked_on_the_score_charts(self, north, patient, clinician):
        build_course(patient, clinician)  # sertraline 50 mg from 1 June, 100 mg from 15 June (week 2)
        content = north.get(timeline_url(patient)).content.decode()
        phq = re.search(r'<svg[^>]*id="chart-phq9".*?</svg>', content, re.S).group(0)
        marks = re.findall(r'<g class="marker" data-week="([^"]+)"><title>([^<]+)</title>', phq)
        assert marks == [("2.0", "2026-06-15: Sertraline 50 → 100 mg")]
        assert "Dose changes: 2026-06-15: Sertraline 50 → 100 mg." in phq  # in the <desc> for screen readers
        # The adherence bars are not a score chart: no dose-change line there.
        adherence = re.search(r'<svg[^>]*id="chart-adherence".*?</svg>', content, re.S).group(0)
        assert 'class="marker"' not in adherence

    def test_summary_calls_only_a_phq9_drop_a_response(self, north, patient, clinician):
        # §4 "Outcome definitions (PHQ-9 unless noted)": response (≥ 50 % reduction) is defined
        # for PHQ-9 only (clinical.RESPONSE_INSTRUMENTS). A GAD-7 16 -> 6 or MADRS 30 -> 12 halves
        # too, but the summary shows its numbers with no "response"; MADRS 12 is no remission (≤ 10).
        build_course(patient, clinician, baseline=20)  # PHQ-9 20 -> 7 -> 4: remission
        for instrument, items, top, totals in (("gad7", 7, 3, (16, 6)), ("madrs", 10, 6, (30, 12))):
            for when, total in zip(("2026-05-30T10:00", "2026-06-29T10:00"), totals, strict=True):
                submit_assessment(
                    patient=patient,
                    instrument=instrument,
                    answers=answers_for(total, items=items, top=top),
                    source="patient" if instrument == "gad7" else "clinician",
                    completed_at=at(when),
                    now=at(when),
                    recorded_by=clinician.user if instrument == "madrs" else None,
                )
        (summary,) = patient_timeline(patient, now=at("2026-07-01T00:00")).summaries
        assert [
            (code, o.reduction is not None and o.reduction >= 0.5, o.response) for code, o in summary.outcomes.items()
        ] == [
            ("phq9", True, True),
            ("gad7", True, False),
            ("madrs", True, False),
        ]
        content = north.get(timeline_url(patient)).content.decode()
        cell = re.search(r'<table class="timeline-summary">.*?</table>', content, re.S).group(0)
        lines = [
            " ".join(re.sub(r"<[^>]+>", " ", line).split()) for line in re.findall(r"<div>(.*?)</div>", cell, re.S)
        ]
        assert lines == ["PHQ9: 20 → 4 remission", "GAD7: 16 → 6", "MADRS: 30 → 12"]

    def test_patient_page_links_to_the_timeline(self, north, patient):
        content = north.get(reverse("admin:tracker_patient_change", args=[patient.pk])).content.decode()
        assert timeline_url(patient) in content
        assert reverse("admin:tracker_patient_export", args=[patient.pk]) in content

    def test_patient_page_links_to_their_open_flags_on_the_worklist(self, north, patient):
        content = north.get(reverse("admin:tracker_patient_change", args=[patient.pk])).content.decode()
        link = f"{reverse('admin:index')}?patient={patient.pk}"
        assert f'href="{link}"' in content
        worklist = north.get(link)
        assert worklist.status_code == 200
        assert worklist.context["filter_form"].is_valid()
        assert worklist.context["chosen_patient"] == patient

    def test_a_patient_without_a_course_still_renders(self, north, patient):
        response = north.get(timeline_url(patient))
        assert response.status_code == 200
        assert "No prescriptions yet." in response.content.decode()


def test_weights_are_events_in_date_order_without_those_in_error(north, patient, clinician):
    daily_course(patient, clinician, name="aripiprazole", dose="5", start="2026-06-01")
    for when, kg, note in (("2026-05-30", "70.0", "Baseline"), ("2026-06-29", "72.1", ""), ("2026-06-30", "27.1", "")):
        weight = record_weight(
            patient=patient, weight_kg=Decimal(kg), recorded_by=None, note=note, now=at(f"{when}T09:00")
        )
    mark_entered_in_error(record=weight, by=clinician.user, reason="Digits swapped")
    timeline = patient_timeline(patient, now=at("2026-07-01T00:00"))
    weights = [(e.title, e.detail) for e in timeline.events if e.kind == "weight"]
    assert weights == [("Weight: 70.0 kg", "Baseline"), ("Weight: 72.1 kg", "")]
    assert [e.at for e in timeline.events] == sorted(e.at for e in timeline.events)
    assert timeline.events[0].kind == "weight"  # weighed before the course started
    content = north.get(timeline_url(patient)).content.decode()
    assert 'data-kind="weight"' in content and "Weight: 72.1 kg" in content


@pytest.mark.parametrize(("extra_flags", "extra_scores"), [(0, 0), (27, 12)])
def test_timeline_query_count_does_not_grow(
    north, patient, clinician, extra_flags, extra_scores, django_assert_num_queries
):
    build_course(patient, clinician, extra_flags=extra_flags, extra_scores=extra_scores)
    sessions_installed = any(m.__name__ == "InClinicSession" for m in apps.get_models())
    with django_assert_num_queries(16 + sessions_installed):
        # 1. the session
        # 2. the logged-in user
        # 3. the user's clinic membership
        # 4. the patient (clinic-scoped, with its unresolved-flag count)
        # 5. the user's own permissions
        # 6. the user's group permissions
        # +1. the access log's INSERT (who opened the record; tracker.services.access)
        # 7. the prescription versions with their drug
        # 8. course summaries: the courses (versions again, as the sweeps load them)
        # 9. course summaries: the PHQ-9 / GAD-7 / MADRS scores
        # 10. planned doses per local day by outcome (one GROUP BY)
        # 11. unplanned doses taken per local day
        # 12. assessments
        # 13. side-effect reports
        # 14. weight measurements
        # 15. flags
        # (16.) in-clinic sessions, once tracker.models.sessions is installed
        response = north.get(timeline_url(patient))
    assert response.status_code == 200


class TestCharts:
    def test_labels_are_escaped(self):
        chart = charts.draw(
            kind="line",
            chart_id="x",
            title="<b>t</b>",
            description="d",
            y_name="y",
            y_max=10,
            points=[charts.Point(week=1, value=3, label="<script>alert(1)</script>: 3")],
        )
        assert "<script>" not in chart.svg
        assert "&lt;script&gt;" in chart.svg

    def test_a_point_maps_into_the_plot_area(self):
        chart = charts.draw(
            kind="line",
            chart_id="x",
            title="t",
            description="d",
            y_name="y",
            y_max=10,
            points=[charts.Point(0, 10, "a: 10")],
        )
        cx, cy = re.search(r'<circle cx="([\d.]+)" cy="([\d.]+)"', chart.svg).groups()
        assert float(cx) == charts.LEFT
        assert float(cy) == charts.TOP


def test_other_clinic_gets_404_on_every_patient_url(north, other_patient, other_clinician):
    """Every admin URL of a patient, the new ones included, answers 404 to another clinic."""
    daily_course(other_patient, other_clinician, start="2026-06-01")
    history_id = other_patient.history.latest().history_id
    urls = [
        reverse("admin:tracker_patient_change", args=[other_patient.pk]),
        reverse("admin:tracker_patient_history", args=[other_patient.pk]),
        reverse("admin:tracker_patient_delete", args=[other_patient.pk]),
        reverse("admin:tracker_patient_simple_history", args=[other_patient.pk, history_id]),
        reverse("admin:tracker_patient_timeline", args=[other_patient.pk]),
        reverse("admin:tracker_patient_export", args=[other_patient.pk]),
    ]
    for url in urls:
        assert north.get(url).status_code == 404, url


def test_clinic_sessions_hook_is_empty_without_sessions(patient):
    from tracker.timeline import clinic_session_events

    assert clinic_session_events(patient) == []


def test_superuser_sees_any_clinics_timeline(client, other_patient):
    client.force_login(factories.UserFactory(username="root", is_staff=True, is_superuser=True))
    assert client.get(timeline_url(other_patient)).status_code == 200


class TestIssue18Charts:
    def test_gad7_chart_has_its_screening_cut_off_and_no_response_line(self, north, patient, clinician):
        from tests.test_exports import gad7

        daily_course(patient, clinician, start="2026-06-01")
        gad7(patient, "2026-05-30T10:00", [2] * 7)  # 14: baseline
        gad7(patient, "2026-06-15T10:00", [1] * 7)  # 7
        content = north.get(timeline_url(patient)).content.decode()
        chart = re.search(r'<svg[^>]*id="chart-gad7".*?</svg>', content, re.S).group(0)
        assert 'class="ref ref-threshold" data-value="10"' in chart  # §4 GAD-7 screen positive ≥ 10
        assert "Screen positive ≥ 10" in chart
        assert "ref-response" not in chart  # §4 defines response for PHQ-9 only

    def test_fibser_shows_the_burden_never_a_total(self, north, patient, clinician):
        daily_course(patient, clinician, start="2026-06-01")
        fibser(patient, "2026-06-08T10:00", 4)  # frequency, intensity and burden 4: a sum would be 12
        timeline = patient_timeline(patient, now=at("2026-06-09T10:00"))
        (event,) = [e for e in timeline.events if e.kind == "assessment"]
        assert event.title.startswith("FIBSER burden: 4 of 6 (")
        content = north.get(timeline_url(patient)).content.decode()
        chart = re.search(r'<svg[^>]*id="chart-fibser".*?</svg>', content, re.S).group(0)
        assert re.findall(r'class="point" data-week="[^"]+" data-value="(\d+)"', chart) == ["4"]
        assert "1 check-in, 0 (none) to 6" in chart  # one check-in reads as one
        assert 'data-value="3"' in chart and 'data-value="5"' in chart  # the action lines
        assert "12" not in re.sub(r"<[^>]+>", " ", chart).split()  # no sum anywhere in the chart's text


class TestExpectedCourse:
    """§4 time_course drawn as a band on the PHQ-9 chart (tracker.trajectory, [P] TRAJECTORY_CHECKPOINTS)."""

    def test_band_points_for_a_known_baseline(self):
        from tracker.trajectory import expected_band

        band = expected_band(24)
        # Weeks 6 and 12 only, from remission (< 5, drawn at 4) to response (50 % of 24).
        assert [(c.week, c.low, c.high, c.responded, c.remitted) for c in band] == [
            (6, 4, 12, 0.50, 0.32),
            (12, 4, 12, 0.68, 0.49),
        ]
        assert [c.high for c in expected_band(20)] == [10, 10]  # the severe band's edge
        assert expected_band(19) == []  # §4's figures are for severe depression only

    def test_the_band_is_drawn_under_the_scores_with_its_title_and_description(self, north, patient, clinician):
        build_course(patient, clinician, baseline=22)  # severe baseline; titrated at week 2
        content = north.get(timeline_url(patient)).content.decode()
        phq = re.search(r'<svg[^>]*id="chart-phq9".*?</svg>', content, re.S).group(0)

        band = re.search(
            r'<g class="band band-expected" data-edges="([^"]+)"><title>([^<]+)</title>'
            r'<polygon points="([^"]+)"/></g>',
            phq,
        )
        assert band is not None
        assert band.group(1) == "6:4-11 12:4-11"  # the course starts on the chart's week 0
        assert "Expected course on Sertraline (baseline 22)" in band.group(2)
        # Four corners: along the response level 11 at weeks 6 and 12, back along the remission level 4.
        corners = [tuple(map(float, xy.split(","))) for xy in band.group(3).split()]
        assert len(corners) == 4
        (x6, top), (x12, top2), (x12b, bottom), (x6b, bottom2) = corners
        assert (x6, x12) == (x6b, x12b) and x6 < x12 and top == top2 and bottom == bottom2
        plot = charts.HEIGHT - charts.TOP - charts.BOTTOM
        assert top == round(charts.HEIGHT - charts.BOTTOM - 11 / 27 * plot, 1)
        assert bottom == round(charts.HEIGHT - charts.BOTTOM - 4 / 27 * plot, 1)
        # Drawn before the dose-change mark and the scores, so they stay on top.
        assert phq.index('class="band') < phq.index('class="marker"') < phq.index('class="point"')
        # The x axis reaches week 12 though the last score is in week 4.
        assert ">12</text>" in phq
        desc = re.search(r"<desc[^>]*>(.*?)</desc>", phq, re.S).group(1)
        assert "by week 6 50% of patients were at or below 11 and 32% at or below 4" in desc
        assert "§4 gives no figures before week 6" in desc

    def test_no_band_below_the_severe_band_and_the_description_says_why(self, north, patient, clinician):
        build_course(patient, clinician)  # baseline 16: moderately severe
        content = north.get(timeline_url(patient)).content.decode()
        phq = re.search(r'<svg[^>]*id="chart-phq9".*?</svg>', content, re.S).group(0)
        assert 'class="band' not in phq
        assert "No expected-course band for Sertraline" in phq
        assert "this baseline is 16" in phq
