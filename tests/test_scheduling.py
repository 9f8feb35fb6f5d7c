"""Schedules expand into planned doses in the patient's wall-clock time, across DST."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import need_service
from tests.factories import PatientFactory, drug
from tracker import scheduling
from tracker.models import DoseSchedule, PlannedDose
from tracker.services.patients import change_timezone
from tracker.services.prescriptions import ScheduleSpec, change_dose, prescribe, reschedule, stop_prescription

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def course(patient, clinician, *, start: dt.date, times=("08:00",), now=None, name="sertraline", dose="50", **spec):
    return prescribe(
        patient=patient,
        drug=drug(name),
        dose=Decimal(dose),
        start_date=start,
        prescriber=clinician,
        schedules=[ScheduleSpec(times_of_day=times, **spec)],
        now=now or dt.datetime.combine(start, dt.time(0), tzinfo=UTC) - dt.timedelta(days=1),
    )


def due_times(rx, first: str, last: str) -> list[str]:
    rows = PlannedDose.objects.filter(prescription=rx, local_date__range=(first, last)).order_by("due_at")
    return [f"{row.local_date} {row.due_at:%H:%M}" for row in rows]


@pytest.mark.django_db
class TestDaylightSaving:
    def test_new_york_spring_forward_keeps_0800_local(self, patient, clinician):
        patient.timezone = "America/New_York"
        patient.save()
        rx = course(patient, clinician, start=dt.date(2026, 3, 6))
        # EST (UTC-5) before 8 March 2026, EDT (UTC-4) from it: 08:00 local both days.
        assert due_times(rx, "2026-03-07", "2026-03-08") == ["2026-03-07 13:00", "2026-03-08 12:00"]

    def test_new_york_0230_on_spring_forward_day_moves_to_0330(self, patient, clinician):
        patient.timezone = "America/New_York"
        patient.save()
        rx = course(patient, clinician, start=dt.date(2026, 3, 6), times=("02:30",))
        # 02:30 does not exist on 8 March; the rule shifts it forward by the gap to 03:30 EDT.
        assert due_times(rx, "2026-03-07", "2026-03-09") == [
            "2026-03-07 07:30",  # 02:30 EST
            "2026-03-08 07:30",  # 03:30 EDT: exactly one dose that day
            "2026-03-09 06:30",  # 02:30 EDT
        ]

    def test_new_york_0130_on_fall_back_day_uses_first_occurrence(self, patient, clinician):
        patient.timezone = "America/New_York"
        patient.save()
        rx = course(patient, clinician, start=dt.date(2026, 10, 30), times=("01:30",))
        # 1 November 2026: 01:30 happens twice (EDT, then EST); the first one (05:30 UTC) is used.
        assert due_times(rx, "2026-10-31", "2026-11-02") == [
            "2026-10-31 05:30",
            "2026-11-01 05:30",
            "2026-11-02 06:30",
        ]

    def test_london_0100_on_spring_forward_day_moves_to_0200(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 3, 27), times=("01:30", "20:00"))
        # 29 March 2026: 01:00 GMT jumps to 02:00 BST, so 01:30 becomes 02:30 BST (01:30 UTC).
        assert due_times(rx, "2026-03-28", "2026-03-30") == [
            "2026-03-28 01:30",
            "2026-03-28 20:00",
            "2026-03-29 01:30",
            "2026-03-29 19:00",
            "2026-03-30 00:30",
            "2026-03-30 19:00",
        ]

    def test_london_0130_on_fall_back_day_is_one_dose(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 10, 23), times=("01:30",))
        # 25 October 2026: 01:30 BST (00:30 UTC) comes first, then 01:30 GMT; one dose, the first.
        assert due_times(rx, "2026-10-24", "2026-10-26") == [
            "2026-10-24 00:30",
            "2026-10-25 00:30",
            "2026-10-26 01:30",
        ]

    def test_london_0230_daily_dose_across_both_changes(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 3, 28), times=("02:30",))
        assert due_times(rx, "2026-03-28", "2026-03-30") == [
            "2026-03-28 02:30",  # GMT
            "2026-03-29 01:30",  # 02:30 BST exists on the change day in London
            "2026-03-30 01:30",
        ]


@pytest.mark.django_db
class TestScheduleKinds:
    def test_prn_schedule_plans_nothing(self, patient, clinician):
        rx = prescribe(
            patient=patient,
            drug=drug("lorazepam"),
            dose=Decimal("1"),
            start_date=dt.date(2026, 5, 1),
            prescriber=clinician,
            schedules=[ScheduleSpec(kind=DoseSchedule.Kind.PRN, times_of_day=(), prn_max_doses_per_day=2)],
            now=at("2026-05-01T00:00"),
        )
        assert not PlannedDose.objects.filter(prescription=rx).exists()

    def test_weekday_schedule_only_on_chosen_days(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), kind=DoseSchedule.Kind.WEEKDAYS, weekdays=(1, 4))
        days = {pd.local_date.weekday() for pd in PlannedDose.objects.filter(prescription=rx)}
        assert days == {1, 4}

    def test_every_three_days_counts_from_the_schedule_start(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), kind=DoseSchedule.Kind.EVERY_N_DAYS, interval_days=3)
        dates = list(PlannedDose.objects.filter(prescription=rx).values_list("local_date", flat=True))
        assert dates[:3] == [dt.date(2026, 6, 1), dt.date(2026, 6, 4), dt.date(2026, 6, 7)]

    def test_horizon_is_fourteen_days_by_default(self, patient, clinician):
        now = at("2026-06-01T00:00")
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), now=now)
        last = PlannedDose.objects.filter(prescription=rx).order_by("due_at").last()
        assert now + dt.timedelta(days=14) <= last.due_at <= now + dt.timedelta(days=15, hours=9)

    def test_extending_twice_creates_nothing_new(self, patient, clinician):
        now = at("2026-06-01T00:00")
        course(patient, clinician, start=dt.date(2026, 6, 1), now=now)
        count = PlannedDose.objects.count()
        assert scheduling.extend_horizon(now=now) == 0
        assert PlannedDose.objects.count() == count

    def test_extension_later_adds_the_next_days_only(self, patient, clinician):
        now = at("2026-06-01T00:00")
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), now=now)
        before = PlannedDose.objects.filter(prescription=rx).count()
        created = scheduling.extend_horizon(now=now + dt.timedelta(days=3))
        assert created == PlannedDose.objects.filter(prescription=rx).count() - before
        assert created in (2, 3, 4)  # about three more daily doses, never a duplicate

    def test_grace_is_half_the_interval_when_shorter_than_the_class_default(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), times=("08:00", "12:00"))
        morning = PlannedDose.objects.filter(prescription=rx).order_by("due_at").first()
        # Class default 6 h for an SSRI, but the next dose is 4 h later: grace 2 h.
        assert morning.deadline - morning.due_at == dt.timedelta(hours=2)

    def test_grace_uses_the_class_default(self, patient, clinician):
        rx = course(
            patient, clinician, start=dt.date(2026, 6, 1), name="methylphenidate", dose="20", times=("08:00", "20:00")
        )
        first = PlannedDose.objects.filter(prescription=rx).order_by("due_at").first()
        assert first.deadline - first.due_at == dt.timedelta(hours=4)  # stimulant class default (§7)

    def test_last_dose_of_a_window_takes_its_grace_from_the_next_days_first(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), times=("02:00", "22:00"))
        day = dt.date(2026, 6, 10)
        slots = scheduling.expand(rx.schedules.get(), patient.zone, day, day)
        # 22:00 BST, next dose 02:00 the next day: half of 4 h, under the SSRI default of 6 h.
        assert [(s.due_at, s.deadline - s.due_at) for s in slots][-1] == (at("2026-06-10T21:00"), dt.timedelta(hours=2))

    @pytest.mark.parametrize(
        ("kind", "spec"),
        [
            (DoseSchedule.Kind.DAILY, {}),
            (DoseSchedule.Kind.WEEKDAYS, {"weekdays": [1, 4]}),
            (DoseSchedule.Kind.EVERY_N_DAYS, {"interval_days": 3}),
        ],
    )
    def test_shared_rule_expands_to_the_schedules_own_slots(self, kind, spec):
        # Started before the window, ends on its last day (so the last dose keeps the class grace).
        rule = scheduling.Rule.build(
            kind=kind,
            times_of_day=["22:00", "02:30"],
            weekdays=spec.get("weekdays", []),
            interval_days=spec.get("interval_days", 1),
            start_date=dt.date(2026, 2, 26),
            end_date=None,
            rx_start_date=dt.date(2026, 2, 27),
            rx_end_date=dt.date(2026, 3, 10),
            drug_class="ssri",
        )
        zone, first, last = ZoneInfo("America/New_York"), dt.date(2026, 3, 5), dt.date(2026, 3, 10)
        shared = scheduling.shared_rule(rule, first, last)
        assert scheduling.expand_rule(shared, zone, first, last) == scheduling.expand_rule(rule, zone, first, last)

    def test_plan_starts_when_the_schedule_was_made_not_in_the_past(self, patient, clinician):
        # A course entered on 10 June that started on 1 June plans nothing before 10 June.
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), now=at("2026-06-10T12:00"))
        first = PlannedDose.objects.filter(prescription=rx).order_by("due_at").first()
        assert first.due_at >= at("2026-06-10T12:00")


# Withdrawn doses stay as cancelled rows (never deleted); the plan is the rest.
LIVE = PlannedDose.objects.exclude(status=PlannedDose.Status.CANCELLED)


@pytest.mark.django_db
class TestReplanning:
    def test_dose_change_mid_course_keeps_past_planned_doses(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), times=("08:00",), now=at("2026-05-31T12:00"))
        past = list(LIVE.filter(prescription=rx, due_at__lt=at("2026-06-05T12:00")).values_list("id", "due_at"))
        new = change_dose(
            prescription=rx,
            new_dose=Decimal("100"),
            effective_date=dt.date(2026, 6, 6),
            reason="Titration",
            prescriber=clinician,
            now=at("2026-06-05T12:00"),
        )
        kept = list(LIVE.filter(prescription=rx, due_at__lt=at("2026-06-05T12:00")).values_list("id", "due_at"))
        assert kept == past and len(past) == 5
        assert not LIVE.filter(prescription=rx, due_at__gte=at("2026-06-05T12:00")).exists()
        assert LIVE.filter(prescription=new).order_by("due_at").first().local_date == dt.date(2026, 6, 6)
        rx.refresh_from_db()
        assert (rx.status, rx.end_date, new.replaces_id) == ("superseded", dt.date(2026, 6, 5), rx.id)

    def test_timezone_change_replans_future_doses_only(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), now=at("2026-05-31T12:00"))
        now = at("2026-06-03T12:00")
        past = list(LIVE.filter(prescription=rx, due_at__lt=now).values_list("due_at", flat=True))
        change_timezone(patient=patient, new_timezone="America/New_York", now=now)
        assert list(LIVE.filter(prescription=rx, due_at__lt=now).values_list("due_at", flat=True)) == past
        future = LIVE.filter(prescription=rx, due_at__gte=now).order_by("due_at").first()
        assert future.due_at == at("2026-06-04T12:00")  # 08:00 EDT

    def test_dose_change_effective_next_week_keeps_the_old_plan_until_then(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), now=at("2026-05-31T12:00"))
        new = change_dose(
            prescription=rx,
            new_dose=Decimal("100"),
            effective_date=dt.date(2026, 6, 8),
            reason="Titration",
            prescriber=clinician,
            now=at("2026-06-03T12:00"),
        )
        old_days = list(LIVE.filter(prescription=rx).order_by("due_at").values_list("local_date", flat=True))
        new_first = LIVE.filter(prescription=new).order_by("due_at").first()
        assert old_days[-1] == dt.date(2026, 6, 7)  # the old dose until the day before the change
        assert len(old_days) == 7 and len(set(old_days)) == 7  # 1..7 June, once each
        assert new_first.local_date == dt.date(2026, 6, 8)

    def test_reschedule_moves_future_times_and_keeps_past_ones(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), now=at("2026-05-31T12:00"))
        now = at("2026-06-03T12:00")
        reschedule(prescription=rx, schedules=[ScheduleSpec(times_of_day=("21:00",))], reason="Sleepy", now=now)
        times = [
            (pd.local_date.isoformat(), f"{pd.due_at:%H:%M}")
            for pd in LIVE.filter(prescription=rx, local_date__lte="2026-06-04").order_by("due_at")
        ]
        assert times == [
            ("2026-06-01", "07:00"),
            ("2026-06-02", "07:00"),
            ("2026-06-03", "07:00"),
            ("2026-06-03", "20:00"),
            ("2026-06-04", "20:00"),
        ]

    def test_stopping_withdraws_future_doses_and_extension_adds_none(self, patient, clinician):
        rx = course(patient, clinician, start=dt.date(2026, 6, 1), now=at("2026-05-31T12:00"))
        stop_prescription(prescription=rx, end_date=dt.date(2026, 6, 3), reason="Rash", now=at("2026-06-03T12:00"))
        assert not LIVE.filter(prescription=rx, due_at__gte=at("2026-06-04T00:00")).exists()
        assert scheduling.extend_horizon(now=at("2026-06-10T00:00")) == 0
        assert LIVE.filter(prescription=rx).count() == 3


def _planned_rows_of(doses: list[PlannedDose]) -> list[tuple]:
    return [tuple(getattr(dose, name) for name in scheduling.PLANNED_COLUMNS) for dose in doses]


def _planned_rows(rx) -> list[scheduling.PlannedRow]:
    """The rows of ``rx`` in the write path's column order."""
    return list(PlannedDose.objects.filter(prescription=rx).order_by("due_at").values_list(*scheduling.PLANNED_COLUMNS))


@pytest.mark.django_db
class TestWritingPlannedDoses:
    """PostgreSQL writes by COPY into a scratch table; the rows must be what bulk_create wrote."""

    @pytest.fixture
    def rows(self, patient, clinician) -> list[scheduling.PlannedRow]:
        # Two doses a day in New York across the spring-forward day, then the plan removed
        # so each test writes the same rows itself.
        patient.timezone = "America/New_York"
        patient.save()
        rx = course(patient, clinician, start=dt.date(2026, 3, 5), times=("02:30", "20:00"))
        rows = _planned_rows(rx)
        PlannedDose.objects.filter(prescription=rx).delete()
        return rows

    def test_written_columns_are_every_column_of_the_model(self):
        model_columns = {field.column for field in PlannedDose._meta.concrete_fields if not field.primary_key}
        assert {*scheduling.PLANNED_COLUMNS, *scheduling.DEFAULTED_COLUMNS} == model_columns

    def test_copy_writes_the_rows_bulk_create_writes(self, rows):
        need_service(connection.vendor == "postgresql", "the COPY path runs on PostgreSQL only")
        fields = [f.attname for f in PlannedDose._meta.concrete_fields if f.attname not in ("id", "status_changed_at")]
        written = {}
        for insert in (scheduling._insert_by_copy, scheduling._insert_by_orm):
            with transaction.atomic():
                insert(rows)
                written[insert.__name__] = list(PlannedDose.objects.order_by("due_at").values(*fields))
                transaction.set_rollback(True)
        assert len(written["_insert_by_copy"]) == len(rows) > 0
        assert written["_insert_by_copy"] == written["_insert_by_orm"]

    def test_copied_rows_meet_the_models_own_expectations(self, rows):
        need_service(connection.vendor == "postgresql", "the COPY path runs on PostgreSQL only")
        before = timezone.now()
        scheduling._insert_by_copy(rows)
        after = timezone.now()
        copied = list(PlannedDose.objects.order_by("due_at"))
        for dose in copied:
            dose.full_clean()  # choices, the deadline and one-per-slot constraints
        assert {dose.status for dose in copied} == {PlannedDose._meta.get_field("status").get_default()}
        assert all(before <= dose.status_changed_at <= after for dose in copied)
        assert _planned_rows_of(copied) == rows

    def test_copy_skips_slots_already_planned_and_counts_only_new_rows(self, rows):
        need_service(connection.vendor == "postgresql", "the COPY path runs on PostgreSQL only")
        assert scheduling._insert_by_copy(rows[:-1]) == len(rows) - 1
        assert scheduling._insert_by_copy(rows) == 1
        assert PlannedDose.objects.count() == len(rows)

    def test_statements_do_not_grow_with_schedules(self, clinic, patient, clinician):
        now = at("2026-06-01T00:00")

        def extend() -> tuple[int, int]:
            with transaction.atomic():
                with CaptureQueriesContext(connection) as captured:
                    created = scheduling.extend_horizon(now=now + dt.timedelta(days=3))
                transaction.set_rollback(True)
            return len(captured), created

        course(patient, clinician, start=dt.date(2026, 6, 1), now=now)
        course(PatientFactory(clinic=clinic), clinician, start=dt.date(2026, 6, 1), now=now)
        two_statements, two_created = extend()
        course(PatientFactory(clinic=clinic), clinician, start=dt.date(2026, 6, 1), now=now)
        three_statements, three_created = extend()
        # One schedule query, then per batch its savepoint, the insert (on PostgreSQL the
        # scratch table's create, insert and drop around a COPY) and the planned_until update.
        assert three_created > two_created > 0
        assert three_statements == two_statements
