"""My progress: the adherence calendar, score charts as accessible inline SVG, and current medicines."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.dosing import at, daily_course
from tests.symptoms import answers_for
from tests.test_portal_support import clinic_only, course, give_login, local_today, signed_in
from tracker.models import PlannedDose
from tracker.portal import charts, selectors
from tracker.selectors import adherence
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
    with django_assert_num_queries(10):
        # 1 session, 2 user, 3 patient with clinic, 4 and 5 the 7- and 30-day taken shares,
        # 6 the next clinic session, 7 PHQ-9/GAD-7 totals of the last 12 weeks,
        # 8 dose counts per local day and status (GROUP BY), 9 schedules in force with drugs,
        # 10 the streak's planned doses per local day (GROUP BY).
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
    with django_assert_num_queries(10):  # the advice comes from the medicines already loaded: no query more
        html = portal.get(reverse("portal:progress")).content.decode()
    assert "Your next clinic session" in html and "Before your session" in html
    for line in clinical.get("ESK_BEFORE_SESSION_ADVICE"):
        assert line in html
    assert "Do not eat for 2 hours before your session" in html
    assert "Do not drink anything for 30 minutes before your session." in html
    assert html.count("Do not drive or use machinery until the next day") == 1  # said once, in the advice


# --- The streak (tracker/selectors/adherence.py) ---------------------------------------------


def _tally(day: int, planned: int = 2, broken: int = 0, open_: int = 0) -> adherence.DayTally:
    return adherence.DayTally(dt.date(2026, 6, day), planned, broken, open_)


def test_streak_counts_back_from_today_and_days_without_doses_neither_break_nor_extend():
    today = dt.date(2026, 6, 10)
    # Newest first: today done, 8 and 9 had no doses (rows absent), 7 done, 6 skipped.
    days = [_tally(10), _tally(7), _tally(6, broken=1), _tally(5)]
    assert adherence.streak_from_days(days, today) == adherence.Streak(days=2, today_open=False)
    # A day with planned doses all cancelled comes as planned=0: neutral too.
    assert adherence.streak_from_days([_tally(10), _tally(9, planned=0), _tally(8)], today).days == 2


def test_an_unfinished_today_neither_counts_nor_breaks_yesterdays_streak():
    today = dt.date(2026, 6, 10)
    days = [_tally(10, open_=1), _tally(9), _tally(8)]
    assert adherence.streak_from_days(days, today) == adherence.Streak(days=2, today_open=True)
    # ...but a miss today (or a dose past its deadline) breaks it at once.
    assert adherence.streak_from_days([_tally(10, broken=1, open_=1), _tally(9)], today).days == 0
    # Nothing ever taken: no streak, and nothing in the future counts.
    assert adherence.streak_from_days([_tally(11), _tally(10, broken=2)], today).days == 0
    assert adherence.streak_from_days([], today) == adherence.Streak(days=0, today_open=False)


@pytest.fixture
def new_yorker(patient):
    patient.timezone = "America/New_York"
    patient.save(update_fields=["timezone"])
    return patient


def _dst_course(patient, clinician):
    """08:00 and 22:30 in New York from 5 March 2026, every dose of the 5th to the 9th taken;
    clocks go forward on Sunday 8 March.

    22:30 EDT is 02:30 UTC the next day, so a streak judged on UTC days would move that dose.
    """
    rx = daily_course(patient, clinician, times=("08:00", "22:30"), start="2026-03-05")
    doses = {(d.local_date, d.due_at.astimezone(patient.zone).hour): d for d in rx.planned_doses.all()}
    for day in range(5, 10):
        for hour in (8, 22):
            _set(doses, day, hour, PlannedDose.Status.TAKEN)
    return doses


def _set(doses, day: int, hour: int, status: str) -> None:
    PlannedDose.objects.filter(pk=doses[(dt.date(2026, 3, day), hour)].pk).update(status=status)


def test_streak_across_the_daylight_saving_change_is_counted_in_local_days(new_yorker, clinician):
    doses = _dst_course(new_yorker, clinician)
    assert dt.date(2026, 3, 8) in {d for d, _ in doses}  # the 23-hour day is planned like any other
    late_evening = at("2026-03-10T03:00")  # 23:00 EDT on Monday 9 March: today is the 9th
    assert adherence.dose_streak(new_yorker, late_evening) == adherence.Streak(days=5, today_open=False)
    # The DST day's 22:30 dose (02:30 UTC on the 9th) missed: the 9th alone remains.
    _set(doses, 8, 22, PlannedDose.Status.MISSED)
    assert adherence.dose_streak(new_yorker, late_evening).days == 1


def test_a_late_dose_still_in_its_grace_period_holds_the_streak_open_and_past_it_breaks(new_yorker, clinician):
    doses = _dst_course(new_yorker, clinician)
    _set(doses, 9, 22, PlannedDose.Status.PENDING)  # Monday 22:30 not logged yet
    after_midnight = at("2026-03-10T04:30")  # 00:30 EDT Tuesday, within Monday 22:30's grace
    assert doses[(dt.date(2026, 3, 9), 22)].deadline > after_midnight
    # Tuesday's doses are still to come (open) and Monday's late dose may still be logged.
    assert adherence.dose_streak(new_yorker, after_midnight) == adherence.Streak(days=4, today_open=True)
    past_deadline = doses[(dt.date(2026, 3, 9), 22)].deadline + dt.timedelta(minutes=1)
    assert adherence.dose_streak(new_yorker, past_deadline).days == 0  # not logged in time: broken


def test_cancelled_doses_and_entered_in_error_plans_are_no_doses(new_yorker, clinician):
    doses = _dst_course(new_yorker, clinician)
    _set(doses, 7, 8, PlannedDose.Status.CANCELLED)
    _set(doses, 7, 22, PlannedDose.Status.CANCELLED)
    assert adherence.dose_streak(new_yorker, at("2026-03-10T03:00")).days == 4  # the 7th: nothing planned
    other = daily_course(new_yorker, clinician, name="quetiapine", dose="150", times=("21:00",), start="2026-03-05")
    PlannedDose.objects.filter(prescription=other).update(status=PlannedDose.Status.MISSED)
    assert adherence.dose_streak(new_yorker, at("2026-03-10T03:00")).days == 0
    other.entered_in_error_at = at("2026-03-10T00:00")
    other.save(update_fields=["entered_in_error_at"])
    assert adherence.dose_streak(new_yorker, at("2026-03-10T03:00")).days == 4


def _take_days(rx, patient, outcomes: dict[int, str]) -> None:
    """Set the status of each dose ``days_ago`` local days back."""
    today = local_today(patient)
    for days_ago, status in outcomes.items():
        PlannedDose.objects.filter(prescription=rx, local_date=today - dt.timedelta(days=days_ago)).update(
            status=status
        )


def test_my_progress_shows_the_streak_in_words_singular_and_plural_and_raises_no_flag(portal, patient, clinician):
    from tracker.models import Flag

    rx = course(patient, clinician, days_ago=5, times=("00:00",))  # each day's status is set below
    taken, skipped = PlannedDose.Status.TAKEN, PlannedDose.Status.SKIPPED
    _take_days(rx, patient, {5: taken, 4: skipped, 3: taken, 2: taken, 1: taken, 0: taken})
    html = portal.get(reverse("portal:progress")).content.decode()
    assert '<strong class="streak-days">4</strong> days in a row with every dose taken' in html
    assert "Today joins it" not in html
    _take_days(rx, patient, {1: skipped})
    html = portal.get(reverse("portal:progress")).content.decode()
    assert '<strong class="streak-days">1</strong> day in a row with every dose taken' in html
    assert not Flag.objects.exists()  # good news is not work for the clinician


def test_no_streak_shows_nothing_rather_than_zero(portal, patient, clinician):
    rx = course(patient, clinician, days_ago=2, times=("00:00",))
    _take_days(rx, patient, {2: PlannedDose.Status.TAKEN, 1: PlannedDose.Status.MISSED, 0: PlannedDose.Status.SKIPPED})
    html = portal.get(reverse("portal:progress")).content.decode()
    assert "in a row" not in html and "streak-days" not in html
