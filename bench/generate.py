"""Build the "clinic-10k" benchmark database on PostgreSQL, fast and deterministically.

    DJANGO_SETTINGS_MODULE=config.settings_test .venv/bin/python -m bench.generate \\
        --patients 10000 --days 90 --database-url postgres://postgres@127.0.0.1:5432/tracker_bench

Drops and recreates the database, migrates it, then bulk-loads with COPY. Planned doses come
from the app's own ``tracker.scheduling.expand()`` so they are exactly what the scheduler would
make (DST rule, grace, deadlines). Past doses that were not taken stay ``pending`` (never swept)
unless ``--pre-swept`` is given, so a "full sweep from nothing" has real work to do.

The loader bypasses the ORM (and therefore simple-history rows and per-row FK checks:
``session_replication_role = replica``); secondary indexes of the two big tables are dropped
during the load and rebuilt after it, which is several times faster than maintaining them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from bench.common import (
    DEFAULT_URL,
    Progress,
    check_name,
    copy_escape,
    create_database,
    db_name,
    setup_django,
    stopwatch,
)

DEFAULT_NOW = "2026-11-20T12:00:00+00:00"
ZONES = [
    ("Europe/London", 80),
    ("America/New_York", 10),
    ("America/Chicago", 4),
    ("America/Los_Angeles", 2),
    ("Europe/Dublin", 2),
    ("Europe/Paris", 2),
]
PRIMARY = {
    "sertraline": 22, "escitalopram": 14, "fluoxetine": 10, "citalopram": 8, "paroxetine": 5,
    "venlafaxine": 12, "duloxetine": 8, "bupropion": 8, "mirtazapine": 10, "phenelzine": 1,
}  # fmt: skip
ADJUNCT = {
    "aripiprazole": 14, "quetiapine": 14, "lithium": 10, "lorazepam": 12, "clonazepam": 8,
    "mirtazapine": 8, "methylphenidate": 6, "amphetamine": 4, "bupropion": 6,
}  # fmt: skip
WEEKDAYS_MON_FRI = (0, 1, 2, 3, 4)
# drug -> [(weight, kind, times, weekdays, interval_days, prn_max, phase)]
Pattern = tuple[int, str, tuple[str, ...], tuple[int, ...], int, int | None, str]
_ONCE_AM: Pattern = (1, "daily", ("08:00",), (), 1, None, "")
PATTERNS: dict[str, list[Pattern]] = {
    "sertraline": [(70, "daily", ("08:00",), (), 1, None, ""), (20, "daily", ("20:00",), (), 1, None, ""),
                   (10, "daily", ("09:00",), (), 1, None, "")],
    "escitalopram": [(75, "daily", ("08:00",), (), 1, None, ""), (25, "daily", ("21:00",), (), 1, None, "")],
    "citalopram": [(80, "daily", ("08:00",), (), 1, None, ""), (20, "daily", ("20:00",), (), 1, None, "")],
    "paroxetine": [(100, "daily", ("08:00",), (), 1, None, "")],
    "fluoxetine": [(80, "daily", ("08:00",), (), 1, None, ""), (10, "weekdays", ("08:00",), (0,), 1, None, ""),
                   (10, "every_n_days", ("08:00",), (), 2, None, "")],
    "venlafaxine": [(50, "daily", ("08:00", "20:00"), (), 1, None, ""), (50, "daily", ("08:00",), (), 1, None, "")],
    "duloxetine": [(100, "daily", ("08:00",), (), 1, None, "")],
    "bupropion": [(60, "daily", ("08:00",), (), 1, None, ""), (40, "daily", ("08:00", "14:00"), (), 1, None, "")],
    "mirtazapine": [(100, "daily", ("22:00",), (), 1, None, "")],
    "phenelzine": [(100, "daily", ("08:00", "13:00", "18:00"), (), 1, None, "")],
    "methylphenidate": [(50, "weekdays", ("07:30", "12:00"), WEEKDAYS_MON_FRI, 1, None, ""),
                        (30, "daily", ("07:30", "12:00", "16:00"), (), 1, None, ""),
                        (20, "daily", ("07:30", "12:00"), (), 1, None, "")],
    "amphetamine": [(60, "daily", ("07:30",), (), 1, None, ""), (40, "weekdays", ("07:30",), WEEKDAYS_MON_FRI, 1,
                                                                      None, "")],
    "aripiprazole": [(100, "daily", ("08:00",), (), 1, None, "")],
    "quetiapine": [(60, "daily", ("22:00",), (), 1, None, ""), (40, "daily", ("08:00", "20:00"), (), 1, None, "")],
    "lithium": [(60, "daily", ("08:00", "20:00"), (), 1, None, ""), (40, "daily", ("22:00",), (), 1, None, "")],
    "lorazepam": [(70, "prn", (), (), 1, 3, ""), (30, "daily", ("08:00", "14:00", "20:00"), (), 1, None, "")],
    "clonazepam": [(60, "daily", ("08:00", "20:00"), (), 1, None, ""), (40, "prn", (), (), 1, 2, "")],
    # Twice-weekly induction in the clinic (Tue, Fri), or weekly continuation.
    "esketamine": [(70, "weekdays", ("10:00",), (1, 4), 1, None, "induction"),
                   (30, "every_n_days", ("10:00",), (), 7, None, "continuation")],
}  # fmt: skip
ESKETAMINE_SHARE = 0.03
LAPSING_SHARE = 0.10
SKIP_SHARE = 0.02
SKIP_REASONS = ["Felt sick", "Forgot to refill", "Advised by GP", "Away from home"]


@dataclass
class PatientPlan:
    id: int
    zone: str
    adherence: float
    clinician_id: int
    clinician_user_id: int


@dataclass
class SchedulePlan:
    id: int
    kind: str
    times: tuple[str, ...]
    weekdays: tuple[int, ...]
    interval_days: int
    prn_max: int | None
    phase: str


@dataclass
class RxPlan:
    id: int
    patient: PatientPlan
    drug: object  # tracker.models.Drug
    dose: Decimal
    start_date: dt.date
    end_date: dt.date | None
    status: str
    replaces_id: int | None
    created_at: dt.datetime
    schedules: list[SchedulePlan] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90, help="days of history before --now")
    parser.add_argument("--horizon-days", type=int, default=14)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--now", default=DEFAULT_NOW, help="the instant the data is 'as of' (ISO, with offset)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--pre-swept", action="store_true", help="mark overdue untaken doses missed, with flags")
    return parser.parse_args(argv)


def pick(rng: random.Random, weights: dict[str, int], exclude: frozenset[str] | set[str] = frozenset()) -> str:
    names = [n for n in weights if n not in exclude]
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def nice_dose(drug, per_day: int, rng: random.Random) -> Decimal:
    """A dose per administration inside the usual range whose daily total stays under the label maximum."""
    if drug.dose_basis == "session":
        return Decimal(rng.choice(["56", "84"])) if drug.name == "esketamine" else drug.usual_min
    daily = drug.usual_min if rng.random() < 0.6 else drug.usual_max
    dose = (daily / per_day).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if drug.maximum is not None and dose * per_day > drug.maximum:
        dose = (drug.maximum / per_day).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    return dose


class Generator:
    """Plans the clinic in memory (small tables), then streams doses and events into COPY."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.now = dt.datetime.fromisoformat(args.now).astimezone(dt.UTC)
        self.until = self.now + dt.timedelta(days=args.horizon_days + 1)  # what extend_horizon plans to
        self.window_start = self.now.date() - dt.timedelta(days=args.days)
        self.counts: dict[str, int] = {}
        self.expand_cache: dict[tuple, list] = {}

    # -- small tables ---------------------------------------------------------------
    def make_clinic(self) -> list[tuple[int, int]]:
        from django.contrib.auth import get_user_model

        from tracker.models import Clinic, Clinician

        clinic = Clinic.objects.create(name="Clinic 10k", slug="clinic-10k", crisis_guidance="Call 999 or 111.")
        user_model = get_user_model()
        staff: list[tuple[int, int]] = []
        roles = ["prescriber"] * 4 + ["nurse"] * 3 + ["manager"]
        for n, role in enumerate(roles, start=1):
            user = user_model(username=f"bench-{role}-{n}", first_name="Bench", last_name=f"{role.title()} {n}")
            user.set_unusable_password()
            user.is_staff = True
            user.save()
            clinician = Clinician.objects.create(user=user, clinic=clinic, role=role, title="Dr" if n < 5 else "RN")
            if role == "prescriber":
                staff.append((clinician.id, user.id))
        self.clinic_id = clinic.id
        self.nurse_user_ids = [c.user_id for c in Clinician.objects.filter(role="nurse")]
        return staff

    def plan(self, prescribers: list[tuple[int, int]]) -> tuple[list[PatientPlan], list[RxPlan]]:
        from tracker.models import Drug

        drugs = {d.name: d for d in Drug.objects.all()}
        rng = self.rng
        patients: list[PatientPlan] = []
        rxs: list[RxPlan] = []
        zone_names, zone_weights = zip(*ZONES, strict=True)
        sched_id = 0
        for pid in range(1, self.args.patients + 1):
            lapsing = rng.random() < LAPSING_SHARE
            adherence = rng.uniform(0.40, 0.60) if lapsing else rng.uniform(0.80, 0.95)
            clinician_id, user_id = prescribers[pid % len(prescribers)]
            patient = PatientPlan(pid, rng.choices(zone_names, zone_weights)[0], adherence, clinician_id, user_id)
            patients.append(patient)
            n_rx = rng.choices([1, 2, 3, 4], weights=[15, 35, 35, 15])[0]
            chosen = [pick(rng, PRIMARY)]
            if rng.random() < ESKETAMINE_SHARE:
                chosen.append("esketamine")
            while len(chosen) < n_rx:
                chosen.append(pick(rng, ADJUNCT, exclude=set(chosen)))
            for name in chosen:
                drug = drugs[name]
                pattern = rng.choices(PATTERNS[name], weights=[p[0] for p in PATTERNS[name]])[0]
                _, kind, times, weekdays, interval, prn_max, phase = pattern
                per_day = prn_max if kind == "prn" else len(times)
                dose = nice_dose(drug, per_day or 1, rng)
                if rng.random() < 0.75:  # course began before the history window
                    start = self.window_start - dt.timedelta(days=rng.randint(0, 60))
                else:
                    start = self.window_start + dt.timedelta(days=rng.randint(0, max(self.args.days - 7, 0)))
                end: dt.date | None = None
                status = "active"
                roll = rng.random()
                versions: list[tuple[Decimal, dt.date, dt.date | None, str]] = []
                span = (self.now.date() - start).days
                if roll < 0.07 and span > 14:  # completed course
                    end = start + dt.timedelta(days=rng.randint(7, span - 1))
                    status = "completed"
                if roll > 0.90 and span > 20 and kind != "prn" and name != "esketamine":  # titrated once
                    change = start + dt.timedelta(days=rng.randint(7, span - 7))
                    higher = min(dose * Decimal("1.5"), (drug.maximum or dose * 2) / (per_day or 1))
                    versions.append((dose, start, change - dt.timedelta(days=1), "superseded"))
                    versions.append((higher.quantize(Decimal("0.01"), rounding=ROUND_DOWN), change, None, "active"))
                else:
                    versions.append((dose, start, end, status))
                previous: int | None = None
                zone = ZoneInfo(patient.zone)
                for v_dose, v_start, v_end, v_status in versions:
                    # The plan was made at local midnight of its first day, as the app records it.
                    created = dt.datetime.combine(v_start, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
                    rx = RxPlan(len(rxs) + 1, patient, drug, v_dose, v_start, v_end, v_status, previous, created)
                    sched_id += 1
                    rx.schedules.append(SchedulePlan(sched_id, kind, times, weekdays, interval, prn_max, phase))
                    rxs.append(rx)
                    previous = rx.id
        return patients, rxs

    # -- expansion -------------------------------------------------------------------
    def slots(self, rx: RxPlan, sched: SchedulePlan) -> list[tuple]:
        """Slots from the app's expand(), formatted for COPY; cached by everything expand() reads."""
        from tracker.models import DoseSchedule, Prescription
        from tracker.scheduling import expand

        if sched.kind == "prn":
            return []
        zone = ZoneInfo(rx.patient.zone)
        first = self.window_start
        last = self.until.astimezone(zone).date()
        eff_start = max(first, rx.start_date)
        key = (
            sched.kind, sched.times, sched.weekdays, sched.interval_days, eff_start, rx.end_date,
            rx.drug.drug_class, rx.patient.zone, last,
            rx.start_date if sched.kind == "every_n_days" else None,
        )  # fmt: skip
        cached = self.expand_cache.get(key)
        if cached is not None:
            return cached
        prescription = Prescription(drug=rx.drug, start_date=rx.start_date, end_date=rx.end_date)
        schedule = DoseSchedule(
            prescription=prescription,
            kind=sched.kind,
            times_of_day=list(sched.times),
            weekdays=list(sched.weekdays),
            interval_days=sched.interval_days,
            start_date=rx.start_date,
        )
        out = []
        for slot in expand(schedule, zone, first, last):
            if slot.due_at > self.until:
                continue
            out.append(
                (
                    slot.due_at,
                    slot.deadline,
                    slot.due_at.isoformat(),
                    slot.deadline.isoformat(),
                    slot.local_date.isoformat(),
                    (slot.due_at - dt.timedelta(days=self.args.horizon_days + 1)).isoformat(),
                )
            )
        self.expand_cache[key] = out
        return out


def _ts(value: dt.datetime) -> str:
    return value.isoformat()


def copy_rows(cursor, table: str, columns: list[str], rows) -> int:
    """COPY an iterable of tuples into ``table``; returns the row count."""
    n = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buffer: list[str] = []
        for row in rows:
            buffer.append("\t".join(copy_escape(v) for v in row))
            n += 1
            if len(buffer) >= 20_000:
                copy.write("\n".join(buffer) + "\n")
                buffer = []
        if buffer:
            copy.write("\n".join(buffer) + "\n")
    return n


def detach_indexes(cursor, table: str) -> list[str]:
    """Drop the secondary indexes and unique constraints of ``table``; return the DDL that restores them."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """SELECT i.indexname, i.indexdef FROM pg_indexes i
           WHERE i.tablename = %s AND i.indexname NOT IN (
               SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN ('p', 'u'))""",
        [table, table],
    )
    indexes = cursor.fetchall()
    restore = [definition for _, definition in indexes]
    restore += [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, definition in constraints]
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return restore


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    name = db_name(args.database_url)
    check_name(name)
    started = time.perf_counter()
    sys.stderr.write(f"clinic: {args.patients} patients, {args.days} days, database {name}\n")
    with stopwatch("create database"):
        create_database(args.database_url, name)
    setup_django(args.database_url)

    from django.core.management import call_command
    from django.db import connection

    with stopwatch("migrate"):
        call_command("migrate", verbosity=0)
    gen = Generator(args)
    prescribers = gen.make_clinic()
    with stopwatch("plan patients and prescriptions"):
        patients, rxs = gen.plan(prescribers)
    connection.close()

    import psycopg

    url = args.database_url.replace("postgres://", "postgresql://", 1)
    main_conn = psycopg.connect(url)
    event_conn = psycopg.connect(url)
    for conn in (main_conn, event_conn):
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET synchronous_commit = off")
    cur = main_conn.cursor()
    restore: list[str] = []
    for table in ("tracker_planneddose", "tracker_doseevent", "tracker_assessment"):
        restore += detach_indexes(cur, table)
    main_conn.commit()

    load_small_tables(cur, gen, patients, rxs)
    with stopwatch("planned doses + dose events (COPY)"):
        load_doses(gen, rxs, main_conn, event_conn)
    with stopwatch("assessments (COPY)"):
        gen.counts["tracker_assessment"] = copy_rows(cur, "tracker_assessment", ASSESSMENT_COLUMNS,
                                                     assessment_rows(gen, patients, rxs))  # fmt: skip
    main_conn.commit()
    event_conn.close()
    with stopwatch("rebuild indexes and constraints"):
        cur.execute("SET maintenance_work_mem = '1GB'")
        for ddl in restore:
            cur.execute(ddl)
        for table in ("tracker_patient", "tracker_prescription", "tracker_doseschedule", "tracker_planneddose",
                      "tracker_doseevent", "tracker_assessment"):  # fmt: skip
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        main_conn.commit()
    if args.pre_swept:
        from bench.sql import LOWER_BOUND_SWEEP, lower_bound_params

        with stopwatch("pre-sweep (mark overdue doses missed)"):
            cur.execute("SELECT id FROM django_content_type WHERE app_label='tracker' AND model='planneddose'")
            content_type = cur.fetchone()[0]
            cur.execute(LOWER_BOUND_SWEEP, lower_bound_params(gen.now, content_type))
            main_conn.commit()
    load_seconds = time.perf_counter() - started
    cur.execute("CREATE TABLE bench_meta (key text PRIMARY KEY, value text NOT NULL)")
    meta = {
        "now": gen.now.isoformat(), "patients": args.patients, "days": args.days, "seed": args.seed,
        "horizon_days": args.horizon_days, "pre_swept": args.pre_swept, "load_seconds": round(load_seconds, 1),
    }  # fmt: skip
    for key, value in meta.items():
        cur.execute("INSERT INTO bench_meta VALUES (%s, %s)", [key, json.dumps(value)])
    main_conn.commit()
    main_conn.autocommit = True
    with stopwatch("vacuum (freeze, analyze)"):
        cur.execute("VACUUM (FREEZE, ANALYZE)")
    cur.execute("SELECT status, count(*) FROM tracker_planneddose GROUP BY status ORDER BY status")
    by_status = dict(cur.fetchall())
    cur.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
    size = cur.fetchone()[0]
    main_conn.close()
    total = time.perf_counter() - started
    print(f"\nclinic of {args.patients:,} patients, {args.days} days, as of {gen.now.isoformat()} -> database {name}")
    for table, n in gen.counts.items():
        print(f"  {table:<24} {n:>12,}")
    print("  planned doses by status: " + ", ".join(f"{k} {v:,}" for k, v in by_status.items()))
    print(f"  database size {size}; loaded in {load_seconds:.1f}s, ready (vacuumed) in {total:.1f}s")


PATIENT_COLUMNS = [
    "id", "created_at", "updated_at", "entered_in_error_reason", "clinic_id", "record_number", "given_name",
    "family_name", "date_of_birth", "timezone", "weight_kg", "email", "responsible_clinician_id", "is_active",
    "gender", "language",  # migration 0037: NOT NULL, no database default
]  # fmt: skip
RX_COLUMNS = [
    "id", "created_at", "updated_at", "entered_in_error_reason", "patient_id", "drug_id", "dose", "dose_unit",
    "route", "start_date", "end_date", "prescriber_id", "status", "indication", "change_reason", "replaces_id",
    "clinician_marked_failed",
]  # fmt: skip
SCHEDULE_COLUMNS = [
    "id", "created_at", "updated_at", "entered_in_error_reason", "prescription_id", "kind", "times_of_day",
    "weekdays", "interval_days", "start_date", "end_date", "phase", "prn_max_doses_per_day", "planned_until",
    "change_reason",  # NOT NULL, no database default
]  # fmt: skip
PLANNED_COLUMNS = [
    "id", "patient_id", "prescription_id", "schedule_id", "due_at", "deadline", "local_date", "status",
    "status_changed_at",
]  # fmt: skip
EVENT_COLUMNS = [
    "id", "created_at", "updated_at", "entered_in_error_reason", "patient_id", "prescription_id", "planned_dose_id",
    "outcome", "timing", "occurred_at", "local_date", "location", "skip_reason", "note", "reporter",
    "recorded_by_id", "outside_clinic_report", "skip_choice",  # skip_choice: NOT NULL, no database default
]  # fmt: skip
ASSESSMENT_COLUMNS = [
    "id", "created_at", "updated_at", "entered_in_error_reason", "patient_id", "instrument", "answers", "total",
    "band", "completed_at", "source",
]  # fmt: skip
GIVEN = ["Alex", "Sam", "Jo", "Priya", "Tom", "Aisha", "Chen", "Maria", "Oliver", "Fatima", "Liam", "Grace"]
FAMILY = ["Smith", "Jones", "Patel", "Brown", "Khan", "Taylor", "Wilson", "Nguyen", "Evans", "Garcia", "Murphy"]


def load_small_tables(cur, gen: Generator, patients: list[PatientPlan], rxs: list[RxPlan]) -> None:
    rng = random.Random(gen.args.seed + 1)
    now = _ts(gen.now)

    def patient_rows():
        for p in patients:
            dob = dt.date(rng.randint(1945, 2006), rng.randint(1, 12), rng.randint(1, 28))
            yield (p.id, now, now, "", gen.clinic_id, f"MRN{p.id:07d}", rng.choice(GIVEN), rng.choice(FAMILY),
                   dob.isoformat(), p.zone, None, "", p.clinician_id, "t", "unknown", "en")  # fmt: skip

    def rx_rows():
        for rx in rxs:
            created = _ts(rx.created_at)
            reason = "Titration" if rx.replaces_id else ""
            row = (rx.id, created, created, "", rx.patient.id, rx.drug.id, rx.dose, rx.drug.dose_unit,
                   rx.drug.routes[0], rx.start_date.isoformat(), rx.end_date.isoformat() if rx.end_date else None,
                   rx.patient.clinician_id, rx.status, "Depression", reason, rx.replaces_id, "f")  # fmt: skip
            if doses_per_day:  # as migration 0010 fills it: times of the regular schedules, else 1
                regular = sum(len(s.times) for s in rx.schedules if s.kind != "prn")
                row = (*row, regular or 1)
            if dose_warnings:  # no dose check warned (the model's default, an empty list)
                row = (*row, "[]")
            yield row

    def schedule_rows():
        until = _ts(gen.until)
        for rx in rxs:
            created = _ts(rx.created_at)
            ends = None
            if rx.end_date is not None:  # replaced or completed: nothing is planned after local midnight
                ends = dt.datetime.combine(
                    rx.end_date + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(rx.patient.zone)
                )
                ends = _ts(ends.astimezone(dt.UTC))
            for s in rx.schedules:
                planned = None if s.kind == "prn" else until
                row = (s.id, created, created, "", rx.id, s.kind, json.dumps(list(s.times)),
                       json.dumps(list(s.weekdays)), s.interval_days, rx.start_date.isoformat(), None, s.phase,
                       s.prn_max, planned, "")  # fmt: skip
                yield (*row, created, ends) if active_window else row

    # The active window columns arrived with migration 0004; older checkouts do not have them.
    cur.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'tracker_doseschedule' "
        "AND column_name IN ('active_from', 'active_until')"
    )
    active_window = cur.fetchone()[0] == 2
    schedule_columns = SCHEDULE_COLUMNS + (["active_from", "active_until"] if active_window else [])
    # regular_doses_per_day arrived with migration 0010 (NOT NULL, no database default).
    cur.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'tracker_prescription' "
        "AND column_name = 'regular_doses_per_day'"
    )
    doses_per_day = cur.fetchone()[0] == 1
    # dose_warnings arrived with migration 0019 (JSON, NOT NULL, no database default).
    cur.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'tracker_prescription' "
        "AND column_name = 'dose_warnings'"
    )
    dose_warnings = cur.fetchone()[0] == 1
    rx_columns = (
        RX_COLUMNS + (["regular_doses_per_day"] if doses_per_day else []) + (["dose_warnings"] if dose_warnings else [])
    )

    with stopwatch("patients, prescriptions, schedules (COPY)"):
        gen.counts["tracker_patient"] = copy_rows(cur, "tracker_patient", PATIENT_COLUMNS, patient_rows())
        gen.counts["tracker_prescription"] = copy_rows(cur, "tracker_prescription", rx_columns, rx_rows())
        gen.counts["tracker_doseschedule"] = copy_rows(cur, "tracker_doseschedule", schedule_columns, schedule_rows())


def load_doses(gen: Generator, rxs: list[RxPlan], main_conn, event_conn) -> None:
    """Stream planned doses and dose events into two COPYs at once (two connections)."""
    rng = random.Random(gen.args.seed + 2)
    now = gen.now
    planned_id = event_id = 0
    two_hours = dt.timedelta(hours=2)
    zones: dict[str, ZoneInfo] = {}
    progress = Progress(len(rxs), "doses")
    planned_buf: list[str] = []
    event_buf: list[str] = []
    clinic_users = gen.nurse_user_ids
    with (
        main_conn.cursor().copy(f"COPY tracker_planneddose ({', '.join(PLANNED_COLUMNS)}) FROM STDIN") as pcopy,
        event_conn.cursor().copy(f"COPY tracker_doseevent ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as ecopy,
    ):
        for rx in rxs:
            patient = rx.patient
            zone = zones.setdefault(patient.zone, ZoneInfo(patient.zone))
            in_clinic = rx.drug.in_clinic_only
            reporter = "clinician" if in_clinic else "patient"
            location = "clinic" if in_clinic else "home"
            prefix = f"{patient.id}\t{rx.id}\t"
            for sched in rx.schedules:
                head = f"{prefix}{sched.id}\t"
                for due_at, deadline, due_s, deadline_s, local_s, planned_s in gen.slots(rx, sched):
                    planned_id += 1
                    status, changed = "pending", planned_s
                    if due_at <= now:
                        roll = rng.random()
                        if roll < patient.adherence + SKIP_SHARE:
                            skipped = roll >= patient.adherence
                            if skipped:
                                offset = dt.timedelta(minutes=30)
                            elif rng.random() < 0.85:
                                offset = dt.timedelta(minutes=min(max(rng.gauss(5, 25), -90), 110))
                            else:
                                offset = dt.timedelta(seconds=rng.uniform(7200, 0.9 * (deadline - due_at).seconds))
                            occurred = min(due_at + offset, deadline - dt.timedelta(minutes=1))
                            if occurred <= now:
                                event_id += 1
                                status = "skipped" if skipped else "taken"
                                changed = occurred.isoformat()
                                delta = occurred - due_at
                                timing = (
                                    ""
                                    if skipped
                                    else "late"
                                    if delta > two_hours
                                    else "early"
                                    if delta < -two_hours
                                    else "on_time"
                                )
                                local_date = occurred.astimezone(zone).date().isoformat()
                                recorder = clinic_users[event_id % len(clinic_users)] if in_clinic else "\\N"
                                event_buf.append(
                                    f"{event_id}\t{changed}\t{changed}\t\t{patient.id}\t{rx.id}\t{planned_id}\t"
                                    f"{status}\t{timing}\t{changed}\t{local_date}\t{location}\t"
                                    f"{rng.choice(SKIP_REASONS) if skipped else ''}\t\t{reporter}\t{recorder}\tf\t"
                                )
                    planned_buf.append(f"{planned_id}\t{head}{due_s}\t{deadline_s}\t{local_s}\t{status}\t{changed}")
                if sched.kind == "prn":
                    event_id = _prn_events(gen, rng, rx, zone, event_id, event_buf)
            if len(planned_buf) >= 20_000:
                pcopy.write("\n".join(planned_buf) + "\n")
                planned_buf = []
            if len(event_buf) >= 20_000:
                ecopy.write("\n".join(event_buf) + "\n")
                event_buf = []
            progress.update()
        if planned_buf:
            pcopy.write("\n".join(planned_buf) + "\n")
        if event_buf:
            ecopy.write("\n".join(event_buf) + "\n")
    progress.close()
    main_conn.commit()
    event_conn.commit()
    gen.counts["tracker_planneddose"] = planned_id
    gen.counts["tracker_doseevent"] = event_id


def _prn_events(gen: Generator, rng: random.Random, rx: RxPlan, zone: ZoneInfo, event_id: int, buf: list[str]) -> int:
    """As-needed doses: taken on about one day in four, never planned, never missed."""
    day = max(gen.window_start, rx.start_date)
    end = min(gen.now.date(), rx.end_date or gen.now.date())
    while day <= end:
        if rng.random() < 0.25:
            local = dt.datetime.combine(day, dt.time(rng.randint(10, 22), rng.randint(0, 59)), tzinfo=zone)
            occurred = local.astimezone(dt.UTC)
            if occurred <= gen.now:
                event_id += 1
                ts = occurred.isoformat()
                buf.append(
                    f"{event_id}\t{ts}\t{ts}\t\t{rx.patient.id}\t{rx.id}\t\\N\ttaken\tunplanned\t{ts}\t"
                    f"{day.isoformat()}\thome\t\t\tpatient\t\\N\tf\t"
                )
        day += dt.timedelta(days=1)
    return event_id


def assessment_rows(gen: Generator, patients: list[PatientPlan], rxs: list[RxPlan]):
    """Weekly PHQ-9 and FIBSER check-ins; totals and bands from tracker.scales.score."""
    from tracker import scales

    rng = random.Random(gen.args.seed + 3)
    first_start: dict[int, dt.date] = {}
    for rx in rxs:
        first_start[rx.patient.id] = min(first_start.get(rx.patient.id, rx.start_date), rx.start_date)
    aid = 0
    for p in patients:
        zone = ZoneInfo(p.zone)
        day = max(gen.window_start, first_start[p.id])
        baseline = rng.randint(10, 24)
        improvement = rng.uniform(0.0, 0.6) * (p.adherence > 0.7)
        weeks = 0
        while day <= gen.now.date():
            completed = dt.datetime.combine(day, dt.time(19, rng.randint(0, 59)), tzinfo=zone).astimezone(dt.UTC)
            if completed <= gen.now and rng.random() < (0.9 if p.adherence > 0.7 else 0.5):
                progress = min(weeks / 8, 1.0)
                target = max(0, min(27, round(baseline * (1 - improvement * progress) + rng.gauss(0, 2))))
                answers = [0] * 9
                for _ in range(target):
                    candidates = [i for i in range(8) if answers[i] < 3] or [8]
                    answers[rng.choice(candidates)] += 1
                ts = completed.isoformat()
                for instrument, item_answers in (
                    ("phq9", answers),
                    ("fibser", [rng.randint(0, 3), rng.randint(0, 3), rng.randint(0, 4)]),
                ):
                    result = scales.score(instrument, item_answers)
                    aid += 1
                    yield (aid, ts, ts, "", p.id, instrument, json.dumps(item_answers), result.total, result.band,
                           ts, "patient")  # fmt: skip
            day += dt.timedelta(days=7)
            weeks += 1


if __name__ == "__main__":
    main()
