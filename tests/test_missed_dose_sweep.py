"""The missed-dose sweep: exactly once, set-based, escalating per clinical-reference §7.

Missed doses of one patient and drug are one problem (a flag) with a fact per dose: repeats
fold in and the problem escalates in place (issue 17).
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection

from tests.conftest import need_service
from tests.dosing import at, daily_course
from tests.factories import PatientFactory, drug
from tracker import clinical
from tracker.models import DoseSchedule, Flag, FlagFact, FlagKind, PlannedDose, Severity
from tracker.rules import missed_doses
from tracker.scheduling import extend_horizon
from tracker.services.doses import record_dose
from tracker.services.flags import resolve_flag
from tracker.services.prescriptions import ScheduleSpec, prescribe

pytestmark = pytest.mark.django_db


def flags(kind: str) -> list[Flag]:
    return list(Flag.objects.filter(kind=kind).order_by("raised_at"))


def test_dose_is_not_missed_before_its_grace_ends(patient, clinician):
    daily_course(patient, clinician, start="2026-06-02")  # due 07:00 UTC, SSRI grace 6 h
    result = missed_doses.sweep(now=at("2026-06-02T12:59"))
    assert (result.examined, Flag.objects.count()) == (0, 0)


def test_dose_past_grace_becomes_missed_with_one_warning(patient, clinician):
    daily_course(patient, clinician, start="2026-06-02")
    result = missed_doses.sweep(now=at("2026-06-02T13:00"))
    (flag,) = flags(FlagKind.DOSE_MISSED)
    assert (result.examined, result.flags_raised) == (1, 1)
    assert flag.severity == Severity.WARNING
    assert flag.raised_at == at("2026-06-02T13:00")  # the deadline, not the sweep time
    assert flag.message == "Sertraline 50 mg due at 08:00 on Tue 02 Jun (patient's local time) was not logged."
    assert (flag.title, flag.occurrences) == ("Sertraline 50 mg", 1)
    (fact,) = flag.facts.all()
    assert (fact.message, fact.subject) == (flag.message, PlannedDose.objects.get(local_date="2026-06-02"))
    assert PlannedDose.objects.get(local_date="2026-06-02").status == PlannedDose.Status.MISSED
    (created,) = flag.history.all()
    assert (created.history_type, created.history_user, created.history_change_reason) == (
        "+",
        None,
        "Raised by the tracker",
    )


def test_sweep_run_twice_raises_nothing_new(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    first = missed_doses.sweep(now=at("2026-06-05T00:00"))
    second = missed_doses.sweep(now=at("2026-06-05T00:00"))
    assert first.flags_raised == 1  # one problem: four missed doses of sertraline, urgent
    assert (second.examined, second.flags_raised) == (0, 0)
    (flag,) = Flag.objects.all()
    assert (flag.kind, flag.occurrences, flag.streak) == (FlagKind.DOSE_MISSED_REPEATED, 4, 4)
    assert FlagFact.objects.count() == 4


def test_a_week_of_misses_is_one_problem_whose_count_grows_in_place(patient, clinician, settings):
    settings.TRACKER_CLINICAL_OVERRIDES = {"ESCALATE_CONSECUTIVE_MISSES": 99, "ADHERENCE_MIN_SHARE": 0}
    daily_course(patient, clinician, start="2026-06-01")
    for day in range(1, 8):
        missed_doses.sweep(now=at(f"2026-06-0{day}T14:00"))
    (flag,) = Flag.objects.all()
    assert (flag.kind, flag.severity, flag.occurrences, flag.streak) == (FlagKind.DOSE_MISSED, Severity.WARNING, 7, 7)
    assert flag.raised_at == at("2026-06-01T13:00")  # the first miss: how long it has waited
    assert flag.last_occurred_at == at("2026-06-07T13:00")
    assert flag.message.startswith("Sertraline 50 mg due at 08:00 on Sun 07 Jun")  # the newest fact's words
    assert [f.subject.local_date.day for f in flag.facts.all()] == [1, 2, 3, 4, 5, 6, 7]


def test_a_fold_counts_exactly_the_facts_it_adds_after_one_was_answered(patient, clinician):
    # The fold moves the counters by the facts it inserted (no recount): after a late log
    # answered one fact, the next misses and a repeated sweep keep them equal to the facts.
    rx = daily_course(patient, clinician, start="2026-06-01")
    missed_doses.sweep(now=at("2026-06-03T14:00"))
    when = at("2026-06-02T09:00")
    record_dose(prescription=rx, occurred_at=when, reporter="patient", now=at("2026-06-03T15:00"))
    missed_doses.sweep(now=at("2026-06-05T14:00"))
    missed_doses.sweep(now=at("2026-06-05T14:00"))  # again: nothing new to fold
    (flag,) = Flag.objects.all()
    facts = FlagFact.objects.filter(flag=flag)
    assert flag.occurrences == facts.filter(answered_at__isnull=True).count() == 4
    assert flag.last_occurred_at == max(f.occurred_at for f in facts) == at("2026-06-05T13:00")


def test_taken_and_skipped_doses_are_never_missed(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-02", dose="25", times=("08:00", "20:00"))
    record_dose(prescription=rx, occurred_at=at("2026-06-02T07:10"), reporter="patient", now=at("2026-06-02T07:10"))
    record_dose(
        prescription=rx,
        occurred_at=at("2026-06-02T19:00"),
        reporter="patient",
        outcome="skipped",
        skip_reason="Felt sick",
        now=at("2026-06-02T19:00"),
    )
    assert missed_doses.sweep(now=at("2026-06-03T06:00")).examined == 0
    assert not Flag.objects.exists()


def test_prn_is_never_missed(patient, clinician):
    prescribe(
        patient=patient,
        drug=drug("lorazepam"),
        dose=1,
        start_date=dt.date(2026, 6, 1),
        prescriber=clinician,
        schedules=[ScheduleSpec(kind=DoseSchedule.Kind.PRN, times_of_day=(), prn_max_doses_per_day=3)],
        now=at("2026-06-01T00:00"),
    )
    result = missed_doses.sweep(now=at("2026-06-20T00:00"))
    assert (result.examined, Flag.objects.count()) == (0, 0)


def test_three_consecutive_misses_escalate_the_problem_in_place(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    missed_doses.sweep(now=at("2026-06-02T14:00"))
    (warning,) = Flag.objects.all()  # two misses: still a warning
    assert (warning.kind, warning.severity, warning.occurrences) == (FlagKind.DOSE_MISSED, Severity.WARNING, 2)
    missed_doses.sweep(now=at("2026-06-03T14:00"))
    (urgent,) = Flag.objects.all()
    assert urgent.pk == warning.pk
    assert (urgent.kind, urgent.severity, urgent.occurrences) == (FlagKind.DOSE_MISSED_REPEATED, Severity.URGENT, 3)
    assert urgent.message == "Sertraline: 3 doses missed in a row."
    assert urgent.escalated_at == urgent.history.latest().history_date
    # The escalation is a change in the flag's history: when, by whom (the tracker), from what.
    latest, created = urgent.history.all()[:2]
    assert (latest.history_type, latest.history_user, latest.history_change_reason) == (
        "~",
        None,
        "Severity raised by the tracker",
    )
    assert (created.severity, latest.severity) == (Severity.WARNING, Severity.URGENT)


def test_an_acknowledged_problem_that_escalates_is_open_again(patient, clinician):
    from tracker.services.flags import acknowledge_flag

    daily_course(patient, clinician, start="2026-06-01")
    missed_doses.sweep(now=at("2026-06-01T14:00"))
    acknowledge_flag(flag=Flag.objects.get(), by=clinician.user)
    missed_doses.sweep(now=at("2026-06-02T14:00"))  # a second miss folds in: still acknowledged
    assert Flag.objects.get().status == Flag.Status.ACKNOWLEDGED
    missed_doses.sweep(now=at("2026-06-03T14:00"))  # the third escalates: it needs looking at again
    flag = Flag.objects.get()
    assert (flag.status, flag.severity, flag.notified_at) == (Flag.Status.OPEN, Severity.URGENT, None)


def test_a_resolved_problem_is_not_reopened_by_the_next_miss(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    missed_doses.sweep(now=at("2026-06-01T14:00"))
    first = Flag.objects.get()
    resolve_flag(flag=first, by=clinician.user, note="Patient on holiday, restarting on the 3rd.")
    missed_doses.sweep(now=at("2026-06-02T14:00"))
    second = Flag.objects.exclude(pk=first.pk).get()
    assert (second.status, second.occurrences) == (Flag.Status.OPEN, 1)
    first.refresh_from_db()
    assert (first.status, first.occurrences) == (Flag.Status.RESOLVED, 1)


def test_two_misses_of_a_high_discontinuation_risk_drug_escalate_and_say_why(patient, clinician):
    daily_course(patient, clinician, name="paroxetine", dose="20", start="2026-06-01")
    missed_doses.sweep(now=at("2026-06-02T14:00"))
    (urgent,) = flags(FlagKind.DOSE_MISSED_REPEATED)
    assert urgent.message == (
        "Paroxetine (IR): 2 doses missed in a row. Paroxetine (IR) has a high risk of discontinuation "
        "symptoms when doses are missed."
    )
    assert "discontinuation symptoms" in urgent.action


@pytest.mark.parametrize(
    ("name", "dose", "interval", "misses"),
    [
        ("sertraline", "50", 14, 3),  # §7: ≥ 3 consecutive misses
        ("paroxetine", "20", 14, 2),  # ≥ 2 for a high discontinuation-risk drug (§5)
        ("paroxetine", "20", 28, 2),  # a monthly plan: its two misses lie 28 days apart
    ],
)
def test_a_course_dosed_every_n_days_escalates_after_its_consecutive_misses(
    name, dose, interval, misses, patient, clinician
):
    # The run is counted over enough of the schedule's intervals to hold the escalation
    # threshold (clinical.REPEATED_MISS_LOOKBACK_DAYS is only the least): a bare 28 days
    # never saw the third miss of a 14-day plan, nor the second of a 28-day one.
    rx = daily_course(
        patient,
        clinician,
        name=name,
        dose=dose,
        start="2026-06-01",
        kind=DoseSchedule.Kind.EVERY_N_DAYS,
        interval_days=interval,
    )
    extend_horizon(now=at("2026-06-01T00:00"), horizon_days=interval * misses + 7)
    dues = list(PlannedDose.objects.filter(prescription=rx).order_by("due_at").values_list("due_at", flat=True))
    assert {(b - a).days for a, b in itertools.pairwise(dues[:misses])} == {interval}
    for number, due in enumerate(dues[:misses], start=1):
        missed_doses.sweep(now=due + dt.timedelta(hours=7))  # past the 6 h grace
        (flag,) = Flag.objects.all()
        if number < misses:
            assert (flag.kind, flag.severity, flag.streak) == (FlagKind.DOSE_MISSED, Severity.WARNING, number)
    assert (flag.kind, flag.severity, flag.occurrences) == (FlagKind.DOSE_MISSED_REPEATED, Severity.URGENT, misses)
    assert f": {misses} doses missed in a row." in flag.message


def test_a_taken_dose_breaks_the_run_of_misses(patient, clinician, settings):
    settings.TRACKER_CLINICAL_OVERRIDES = {"ADHERENCE_MIN_SHARE": 0}  # judge the run rule alone
    rx = daily_course(patient, clinician, start="2026-06-01")
    missed_doses.sweep(now=at("2026-06-02T14:00"))  # 1 and 2 June missed
    record_dose(prescription=rx, occurred_at=at("2026-06-03T07:00"), reporter="patient", now=at("2026-06-03T07:00"))
    missed_doses.sweep(now=at("2026-06-05T14:00"))  # 4 and 5 June missed: a run of two
    assert flags(FlagKind.DOSE_MISSED_REPEATED) == []


def test_catch_up_escalates_a_run_that_ended_before_the_patient_resumed(patient, clinician, settings):
    # The sweep did not run from 1 to 4 June; the patient missed three days, then resumed.
    settings.TRACKER_CLINICAL_OVERRIDES = {"ADHERENCE_MIN_SHARE": 0}  # judge the run rule alone
    rx = daily_course(patient, clinician, start="2026-06-01")
    record_dose(prescription=rx, occurred_at=at("2026-06-04T07:00"), reporter="patient", now=at("2026-06-04T07:00"))
    missed_doses.sweep(now=at("2026-06-04T14:00"))
    (urgent,) = flags(FlagKind.DOSE_MISSED_REPEATED)
    assert urgent.message.startswith("Sertraline: 3 doses missed in a row.")
    # A later sweep does not judge that run again once it is closed.
    resolve_flag(flag=urgent, by=clinician.user, note="Spoke to the patient; back on track.")
    record_dose(prescription=rx, occurred_at=at("2026-06-05T07:00"), reporter="patient", now=at("2026-06-05T07:00"))
    missed_doses.sweep(now=at("2026-06-06T14:00"))  # 6 June missed: a run of one
    assert len(flags(FlagKind.DOSE_MISSED_REPEATED)) == 1


def test_low_seven_day_share_escalates(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    # Taken, missed, taken, missed, taken, missed: never three in a row, 3 of 6 taken.
    for day in ("01", "03", "05"):
        when = at(f"2026-06-{day}T07:00")
        record_dose(prescription=rx, occurred_at=when, reporter="patient", now=when)
    missed_doses.sweep(now=at("2026-06-06T14:00"))
    (urgent,) = flags(FlagKind.DOSE_MISSED_REPEATED)
    assert urgent.message == "Sertraline: only 3 of 6 doses taken in the last 7 days."


def test_sweep_catches_up_after_a_day_without_running(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01", dose="25", times=("08:00", "20:00"))
    result = missed_doses.sweep(now=at("2026-06-03T02:00"))  # the 20:00 dose's grace is 6 h
    assert result.examined == 4
    assert FlagFact.objects.filter(flag__patient=patient).count() == 4
    assert Flag.objects.get().occurrences == 4


def _shape(patient) -> tuple[list[tuple], list[str]]:
    problems = list(patient.flags.values_list("kind", "severity", "status", "occurrences", "streak", "raised_at"))
    facts = list(
        FlagFact.objects.filter(flag__patient=patient).order_by("occurred_at").values_list("message", flat=True)
    )
    return problems, facts


def test_batches_give_the_same_flags_as_one_pass(clinic, clinician):
    batched, whole = (
        PatientFactory(clinic=clinic, record_number="B-1"),
        PatientFactory(clinic=clinic, record_number="W-1"),
    )
    daily_course(batched, clinician, start="2026-06-01", dose="25", times=("08:00", "20:00"))
    result = missed_doses.sweep(now=at("2026-06-05T02:00"), batch_size=3)
    assert result.examined == 8
    daily_course(whole, clinician, start="2026-06-01", dose="25", times=("08:00", "20:00"))
    assert missed_doses.sweep(now=at("2026-06-05T02:00")).examined == 8
    assert _shape(batched) == _shape(whole)
    assert len(_shape(whole)[1]) == 8


def test_batches_that_split_patients_miss_nobody_and_escalate_each_once(clinic, clinician):
    # Batches of 5 go patient by patient, so each patient's 8 misses straddle a boundary.
    patients = [PatientFactory(clinic=clinic, record_number=f"B-{i}") for i in range(3)]
    for patient in patients:
        daily_course(patient, clinician, start="2026-06-01", dose="25", times=("08:00", "20:00"))
    result = missed_doses.sweep(now=at("2026-06-05T02:00"), batch_size=5)
    assert result.examined == 24
    assert (
        PlannedDose.objects.filter(status=PlannedDose.Status.PENDING, deadline__lte=at("2026-06-05T02:00")).count() == 0
    )
    assert FlagFact.objects.count() == 24  # every missed dose is a fact, once
    assert flags(FlagKind.DOSE_MISSED) == []  # each patient's problem escalated in place
    repeated = flags(FlagKind.DOSE_MISSED_REPEATED)
    assert sorted(f.patient_id for f in repeated) == sorted(p.pk for p in patients)
    assert [f.occurrences for f in repeated] == [8, 8, 8]
    # Raised by the batch in which the run first crossed the threshold; it says the run then.
    runs = [int(f.message.removeprefix("Sertraline: ").split()[0]) for f in repeated]
    assert all(f.message.endswith(" doses missed in a row.") for f in repeated)
    assert min(runs) >= clinical.get("ESCALATE_CONSECUTIVE_MISSES")


def test_run_sweeps_command_judges_the_given_instant(patient, clinician, capsys):
    daily_course(patient, clinician, start="2026-06-02")
    call_command("run_sweeps", "missed_doses", "--at", "2026-06-02T13:00:00Z")
    assert "missed_doses: examined 1, flags raised 1" in capsys.readouterr().out


def _clinic_of(n: int, clinic, clinician) -> None:
    for i in range(n):
        daily_course(PatientFactory(clinic=clinic, record_number=f"Q{n}-{i}"), clinician, start="2026-06-01")


@pytest.mark.parametrize("patients", [10, 200])
def test_sweep_query_count_does_not_grow_with_patients(patients, clinic, clinician, django_assert_num_queries):
    # SQLite splits the flag insert into chunks of 400 rows, so only PostgreSQL (where CI
    # runs this) shows the single-statement shape being asserted.
    need_service(connection.vendor == "postgresql", "the query-count shape is asserted on PostgreSQL")
    _clinic_of(patients, clinic, clinician)
    ContentType.objects.get_for_model(PlannedDose)  # cached per process, as in a worker
    # SAVEPOINT; SET LOCAL jit = off; claim UPDATE ... RETURNING the doses; their prescriptions
    # with drug and zone; the per-(patient, drug) context aggregate; SAVEPOINT for the flags;
    # lock the open problems of these keys; INSERT the new problems ... ON CONFLICT DO NOTHING
    # RETURNING; INSERT their facts ... ON CONFLICT DO NOTHING RETURNING; their history rows;
    # RELEASE both.
    with django_assert_num_queries(12):
        result = missed_doses.sweep(now=at("2026-06-02T14:00"))
    assert result.examined == 2 * patients


# The context query reads each touched (patient, drug) only from where its runs can start.
# Judged against the query it replaced, which read 28 days (a daily drug's lookback) of every
# drug of each patient touched, on random histories: long lapses, outages between sweeps, batches that split patients.
_WHOLE_WINDOW_CONTEXT = """
    WITH recent AS (
        SELECT pd.patient_id, rx.drug_id, pd.due_at, pd.status,
               CASE WHEN pd.status = 'missed' AND pd.status_changed_at = %s THEN 1 ELSE 0 END AS fresh,
               ROW_NUMBER() OVER (PARTITION BY pd.patient_id, rx.drug_id ORDER BY pd.due_at)
               - ROW_NUMBER() OVER (
                   PARTITION BY pd.patient_id, rx.drug_id, pd.status = 'missed' ORDER BY pd.due_at
               ) AS island
        FROM tracker_planneddose pd
        JOIN tracker_prescription rx ON rx.id = pd.prescription_id
        WHERE pd.patient_id IN ({ids}) AND pd.due_at >= %s AND pd.deadline <= %s
          AND pd.status IN ('taken', 'skipped', 'missed')
    ),
    runs AS (
        SELECT patient_id, drug_id, COUNT(*) AS length FROM recent WHERE status = 'missed'
        GROUP BY patient_id, drug_id, island HAVING MAX(fresh) = 1
    ),
    longest AS (SELECT patient_id, drug_id, MAX(length) AS run FROM runs GROUP BY patient_id, drug_id)
    SELECT r.patient_id, r.drug_id, COALESCE(MAX(l.run), 0),
        SUM(CASE WHEN r.status = 'taken' AND r.due_at >= %s THEN 1 ELSE 0 END),
        SUM(CASE WHEN r.due_at >= %s THEN 1 ELSE 0 END)
    FROM recent r LEFT JOIN longest l ON l.patient_id = r.patient_id AND l.drug_id = r.drug_id
    GROUP BY r.patient_id, r.drug_id
"""


def _whole_window_context(patient_ids: list[int], now: dt.datetime) -> dict[tuple[int, int], tuple[int, int, int]]:
    from tracker.rules.sql import ts

    share_since = now - dt.timedelta(days=clinical.get("ADHERENCE_WINDOW_DAYS"))
    sql = _WHOLE_WINDOW_CONTEXT.format(ids=", ".join(["%s"] * len(patient_ids)))
    params = [
        ts(now),
        *patient_ids,
        ts(now - clinical.repeated_miss_lookback(1)),
        ts(now),
        ts(share_since),
        ts(share_since),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(p, d): (int(run), int(taken), int(judged)) for p, d, run, taken, judged in cursor.fetchall()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_context_reads_only_what_the_runs_need_and_agrees_with_the_whole_window(seed, clinic, clinician, monkeypatch):
    import random

    rng = random.Random(seed)
    patients = [PatientFactory(clinic=clinic, record_number=f"R{seed}-{i}") for i in range(4)]
    for patient in patients:
        daily_course(patient, clinician, start="2026-06-01", times=("08:00",))
        daily_course(patient, clinician, name="paroxetine", dose="20", start="2026-06-01", times=("08:00", "20:00"))
    extend_horizon(now=at("2026-07-01T00:00"))  # plans to mid-July
    # Each (patient, drug) lapses and resumes: long runs of misses, taken and skipped doses between.
    lapsed: dict[int, bool] = {}
    for dose in PlannedDose.objects.filter(due_at__lt=at("2026-07-15T00:00")).order_by("due_at", "id"):
        key = dose.prescription_id
        if rng.random() < 0.15:
            lapsed[key] = not lapsed.get(key, False)
        if not lapsed.get(key, False) and rng.random() < 0.85:
            dose.status = rng.choice([PlannedDose.Status.TAKEN] * 6 + [PlannedDose.Status.SKIPPED])
            dose.save(update_fields=["status"])
    checked = []
    real_context = missed_doses._context

    def both(claimed, medicines, now, earlier):
        got = real_context(claimed, medicines, now, earlier)
        touched = {(c.patient_id, medicines[c.prescription_id].drug_id) for c in claimed}
        whole = _whole_window_context(sorted({c.patient_id for c in claimed}), now)
        assert {pair: (ctx.run, ctx.taken, ctx.judged) for pair, ctx in got.items()} == {
            pair: value for pair, value in whole.items() if pair in touched
        }
        checked.append(len(got))
        return got

    monkeypatch.setattr(missed_doses, "_context", both)
    now = at("2026-06-02T00:00")
    while now < at("2026-07-14T00:00"):
        # Sweeps every few hours, with outages of up to five days; small batches split patients.
        now += rng.choice([dt.timedelta(hours=rng.randint(1, 12)), dt.timedelta(days=rng.randint(1, 5))])
        missed_doses.sweep(now=now, batch_size=rng.choice([3, 7, 50, 5000]))
    assert len(checked) > 15 and sum(checked) > 60
