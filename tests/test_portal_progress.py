"""My progress: the adherence calendar, score charts as accessible inline SVG, and current medicines."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.symptoms import answers_for
from tests.test_portal_support import clinic_only, course, give_login, local_today, signed_in
from tracker.models import PlannedDose
from tracker.portal import charts, selectors
from tracker.services.assessments import submit_assessment
from tracker.services.doses import record_dose
from tracker.services.prescriptions import change_dose

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal(client, patient):
    return signed_in(client, give_login(patient, "pat"))


def test_calendar_counts_taken_skipped_and_missed_per_local_day(patient, clinician):
    rx = course(patient, clinician, days_ago=3, times=("08:00", "20:00"))
    today = local_today(patient)
    doses = {d.local_date: [] for d in PlannedDose.objects.filter(prescription=rx)}
    for d in PlannedDose.objects.filter(prescription=rx).order_by("due_at"):
        doses[d.local_date].append(d)
    three_ago, two_ago, one_ago = (today - dt.timedelta(days=n) for n in (3, 2, 1))
    for planned in doses[three_ago]:
        record_dose(
            prescription=rx, planned_dose=planned, occurred_at=planned.due_at, reporter="patient", now=planned.due_at
        )
    record_dose(
        prescription=rx,
        planned_dose=doses[two_ago][0],
        occurred_at=doses[two_ago][0].due_at,
        now=doses[two_ago][0].due_at,
        reporter="patient",
        outcome="skipped",
        skip_reason="Felt sick",
    )
    PlannedDose.objects.filter(pk=doses[one_ago][0].pk).update(status=PlannedDose.Status.MISSED)

    weeks = selectors.adherence_calendar(patient, timezone.now(), weeks=4)
    days = {day.date: day for week in weeks for day in week}
    assert len(weeks) == 4 and all(len(w) == 7 for w in weeks) and weeks[0][0].date.weekday() == 0
    assert days[three_ago].state == "taken" and days[three_ago].summary == "2 of 2 taken"
    assert days[two_ago].state == "skipped" and days[two_ago].summary == "0 of 2 taken, 1 skipped, 1 not logged"
    assert days[one_ago].state == "missed"
    assert days[today - dt.timedelta(days=5)].state == "none"
    assert all(day.state == "future" for day in days.values() if day.date > today)


def test_chart_geometry_puts_higher_scores_higher_and_describes_the_trend():
    first = dt.date(2026, 6, 1)
    chart = charts.line_chart("phq9", [(first, 20), (dt.date(2026, 6, 29), 8)], first, dt.date(2026, 8, 24))
    low, high = chart.points[1], chart.points[0]
    assert high.y < low.y  # SVG y grows downwards
    assert chart.points[0].x == charts.LEFT and chart.polyline.count(",") == 2
    assert chart.description == (
        "2 PHQ-9 scores from 01 June to 29 June: 20 to 8 out of 27 (lower is better; the line went down)."
    )
    assert [t.label for t in chart.y_ticks] == ["0", "5", "10", "15", "20", "27"]
    assert charts.line_chart("gad7", [], first, first).description == "No GAD-7 answers yet."


def test_progress_page_shows_calendar_chart_and_medicines(portal, patient, clinician):
    course(patient, clinician, days_ago=10)
    clinic_only(patient, clinician)
    for weeks_ago, total in ((3, 18), (2, 14), (1, 9)):
        when = timezone.now() - dt.timedelta(weeks=weeks_ago)
        submit_assessment(
            patient=patient, instrument="phq9", answers=answers_for(total), source="patient", completed_at=when
        )
    html = portal.get(reverse("portal:progress")).content.decode()
    assert '<table class="calendar">' in html
    assert 'role="img" aria-labelledby="chart-phq9-title chart-phq9-desc"' in html
    assert '<title id="chart-phq9-title">PHQ-9 scores over the last 12 weeks</title>' in html
    assert "3 PHQ-9 scores from" in html and "18 to 9 out of 27" in html
    assert html.count("<circle") == 3
    assert '<th scope="col">Score (out of 27)</th>' in html  # the data table fallback
    assert "Sertraline</h3>" in html and "50 mg by mouth, daily at 08:00; " not in html
    assert "50 mg by mouth, daily at 08:00, 20:00." in html
    assert "56 mg nasal spray, daily at 10:00 – given at the clinic." in html
    # The page itself needs no script; the only one is the site-wide offline helper in <head>.
    main = html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    assert "<script" not in main and "style=" not in main


def test_medicines_show_the_version_in_force_after_a_dose_change(portal, patient, clinician):
    rx = course(patient, clinician, days_ago=10)
    change_dose(
        prescription=rx,
        new_dose=100,
        effective_date=local_today(patient) + dt.timedelta(days=3),
        reason="Titration",
        prescriber=clinician,
    )
    html = portal.get(reverse("portal:progress")).content.decode()
    assert "50 mg by mouth" in html and "100 mg" not in html  # the new dose starts in 3 days


def test_progress_query_count_is_fixed(portal, patient, clinician, django_assert_num_queries):
    course(patient, clinician, days_ago=60)
    with django_assert_num_queries(9):
        # 1 session, 2 user, 3 patient with clinic, 4 and 5 the 7- and 30-day taken shares,
        # 6 the next clinic session, 7 PHQ-9/GAD-7 totals of the last 12 weeks,
        # 8 dose counts per local day and status (GROUP BY), 9 schedules in force with drugs.
        portal.get(reverse("portal:progress"))


def test_progress_shows_the_7_and_30_day_taken_shares_from_the_caseload_computation(portal, patient, clinician):
    from tracker.selectors import caseload

    rx = course(patient, clinician, days_ago=20, times=("08:00",))
    now = timezone.now()
    past = list(PlannedDose.objects.filter(prescription=rx, due_at__lte=now).order_by("due_at"))
    PlannedDose.objects.filter(pk__in=[d.pk for d in past]).update(status=PlannedDose.Status.TAKEN)
    # Three misses in the last week: 7-day and 30-day shares differ.
    recent = [d for d in past if d.due_at > now - dt.timedelta(days=7)]
    PlannedDose.objects.filter(pk__in=[d.pk for d in recent[:3]]).update(status=PlannedDose.Status.MISSED)
    html = portal.get(reverse("portal:progress")).content.decode()
    for days in (7, 30):
        share = caseload.adherence([patient.pk], now, days=days)[patient.pk]
        assert share.judged and share.percent is not None
        assert (
            f'<strong class="share-percent">{share.percent}%</strong> of your planned doses taken '
            f"({share.taken} of {share.judged})." in html
        )
    week = caseload.adherence([patient.pk], now, days=7)[patient.pk]
    assert (week.taken, week.judged) == (len(recent) - 3, len(recent))


def test_progress_says_why_there_is_no_share_yet(portal, patient):
    html = portal.get(reverse("portal:progress")).content.decode()
    assert "No figure yet: no doses were planned in the last 7 days." in html
    assert "No figure yet: no doses were planned in the last 30 days." in html
    assert "Your next clinic session" not in html


def test_an_esketamine_patient_sees_the_next_session_and_what_to_expect(portal, patient, clinician):
    patient.timezone = "Europe/London"
    patient.save(update_fields=["timezone"])
    esk = clinic_only(patient, clinician)
    now = timezone.now()
    upcoming = PlannedDose.objects.filter(prescription=esk, deadline__gte=now).order_by("due_at").first()
    html = portal.get(reverse("portal:progress")).content.decode()
    local = upcoming.due_at.astimezone(patient.zone)
    assert "Your next clinic session" in html
    when = f"{local:%A} {local.day} {local:%B} at {local:%H:%M}"
    assert f'Esketamine (nasal) on <time datetime="{local.isoformat()}">{when}</time> (Europe/London time).' in html
    assert "at least 2 hours afterwards" in html
    assert "Do not drive or use machinery until the next day, after a restful sleep." in html


def test_the_next_esketamine_session_says_what_to_do_before_it(portal, patient, clinician, django_assert_num_queries):
    from tracker import clinical

    clinic_only(patient, clinician)
    with django_assert_num_queries(9):  # the advice comes from the medicines already loaded: no query more
        html = portal.get(reverse("portal:progress")).content.decode()
    assert "Your next clinic session" in html and "Before your session" in html
    for line in clinical.get("ESK_BEFORE_SESSION_ADVICE"):
        assert line in html
    assert "Do not eat for 2 hours before your session" in html
    assert "Do not drink anything for 30 minutes before your session." in html
    assert html.count("Do not drive or use machinery until the next day") == 1  # said once, in the advice
