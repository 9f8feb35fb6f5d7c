"""The overdue-monitoring sweep (§5 schedules, issue 18) at 10,000 patients, beside its SQL lower bound.

    DJANGO_SETTINGS_MODULE=config.settings_test .venv/bin/python -m bench.monitoring \\
        --database-url postgres://postgres@127.0.0.1:5432/tracker_bench

Works on a copy (``<name>_monitoring``, migrated as the code expects it, dropped at the end);
``tracker_bench`` itself is never written. Three measurements, each run in a transaction rolled back:

  - the app's sweep (``SWEEPS["monitoring"]``) from nothing: every overdue due item becomes a fact;
  - the same sweep in steady state, after one committed run (nothing new; every course read again);
  - the lower bound: one hand-written statement that computes the same missed due dates (each
    judged in its own window, ``tracker.monitoring.due_windows``; a baseline only by a measure in
    that window; one course per schedule, the earlier-started, as ``followed_schedules``) from the
    prescriptions and the measurements and inserts them as problems and facts, as ``bench/sql.py``
    does for missed doses. It writes no history rows and builds shorter words, so the app's sweep does strictly more.

Median, p95, SQL statements per run (SAVEPOINTs excluded), with the load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

from bench.common import DEFAULT_URL, short_row, working_copy
from bench.sweeps import LOADS, execute, log, timed

# The schedules come from clinical.MONITORING_SCHEDULES as a jsonb parameter, so the statement
# follows the same definitions as the app. Dates are the patient's local dates, as in the app.
LOWER_BOUND = """
WITH RECURSIVE
sched AS (
    SELECT s.key AS schedule, c.cls, m.measure,
           ARRAY(SELECT jsonb_array_elements_text(s.value->'weeks')::int) AS weeks,
           (s.value->>'then_every_weeks')::int AS every,
           (s.value->>'restart_on_dose_increase')::boolean AS restart
    FROM jsonb_each(%(schedules)s::jsonb) s,
         jsonb_array_elements_text(s.value->'classes') c(cls),
         jsonb_array_elements_text(s.value->'measures') m(measure)
),
chain AS (  -- every course: its first version, then each version replacing the previous one
    SELECT rx.id AS root, rx.id, rx.patient_id, rx.start_date, rx.dose, rx.status, rx.drug_id, NULL::numeric AS prev,
           1 AS depth
    FROM tracker_prescription rx
    WHERE rx.entered_in_error_at IS NULL
      AND (rx.replaces_id IS NULL OR rx.replaces_id NOT IN (
          SELECT id FROM tracker_prescription WHERE entered_in_error_at IS NULL))
    UNION ALL
    SELECT c.root, rx.id, rx.patient_id, rx.start_date, rx.dose, rx.status, rx.drug_id, c.dose, c.depth + 1
    FROM chain c JOIN tracker_prescription rx ON rx.replaces_id = c.id AND rx.entered_in_error_at IS NULL
),
course AS (  -- courses of active patients: the first version's start, the newest version (drug, status, id),
            -- today in the patient's zone (tracker.courses.Course: versions in chain order)
    SELECT DISTINCT ON (c.root) c.root, c.patient_id, c.drug_id, c.id AS current_id,
           first_value(c.start_date) OVER w AS start_date,
           (%(now)s AT TIME ZONE p.timezone)::date AS today, c.status
    FROM chain c JOIN tracker_patient p ON p.id = c.patient_id AND p.is_active
    WINDOW w AS (PARTITION BY c.root ORDER BY c.depth
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ORDER BY c.root, c.depth DESC
),
active AS (
    SELECT co.*, d.drug_class, d.display_name FROM course co JOIN tracker_drug d ON d.id = co.drug_id
    WHERE co.status = 'active'
),
anchor AS (  -- the start, and each dose increase where the schedule restarts
    SELECT a.root, s.schedule, s.measure, s.weeks, s.every, x.anchor,
           lead(x.anchor) OVER (PARTITION BY a.root, s.schedule, s.measure ORDER BY x.anchor) AS next_anchor,
           a.today + 7 * (coalesce(s.every, 0) + (SELECT max(w) FROM unnest(s.weeks) w) + 1) AS horizon
    FROM active a JOIN sched s ON s.cls = a.drug_class
    CROSS JOIN LATERAL (
        SELECT a.start_date AS anchor
        UNION
        SELECT c.start_date FROM chain c
        WHERE s.restart AND c.root = a.root AND c.dose > c.prev AND c.start_date > a.start_date
    ) x
),
due AS (  -- week 0 of an anchor (the start, a restart) is a baseline: tracker.monitoring.schedule_anchors
    SELECT an.root, an.schedule, an.measure, an.anchor + 7 * w AS due_on, bool_or(w = 0) AS baseline
    FROM anchor an
    CROSS JOIN LATERAL (
        SELECT unnest(an.weeks) AS w
        UNION ALL
        SELECT generate_series(an.weeks[array_upper(an.weeks, 1)] + an.every, (an.horizon - an.anchor) / 7, an.every)
        WHERE an.every IS NOT NULL
    ) o
    WHERE an.anchor + 7 * w <= an.horizon AND (an.next_anchor IS NULL OR an.anchor + 7 * w < an.next_anchor)
    GROUP BY 1, 2, 3, 4
),
measured AS (  -- current measurements, as local dates
    SELECT m.patient_id, m.kind AS measure, (m.measured_at AT TIME ZONE p.timezone)::date AS day
    FROM tracker_clinicalmeasurement m JOIN tracker_patient p ON p.id = m.patient_id
    WHERE m.entered_in_error_at IS NULL
    UNION ALL
    SELECT w.patient_id, 'weight', (w.measured_at AT TIME ZONE p.timezone)::date
    FROM tracker_weightmeasurement w JOIN tracker_patient p ON p.id = w.patient_id
    WHERE w.entered_in_error_at IS NULL
    UNION ALL
    SELECT s.patient_id, 'fibser', (s.completed_at AT TIME ZONE p.timezone)::date
    FROM tracker_assessment s JOIN tracker_patient p ON p.id = s.patient_id
    WHERE s.entered_in_error_at IS NULL AND s.instrument = 'fibser'
),
lasted AS (  -- each date's last day: its grace, cut the day before the next date's early days
    SELECT d.*, CASE WHEN d.next_due IS NULL THEN d.due_on + %(grace)s
                ELSE GREATEST(d.due_on, LEAST(d.due_on + %(grace)s, d.next_due - %(early)s - 1)) END AS last_day
    FROM (SELECT d.*, lead(d.due_on) OVER (PARTITION BY d.root, d.schedule, d.measure ORDER BY d.due_on) AS next_due
          FROM due d) d
),
windowed AS (  -- each date's window opens EARLY days before it, and never before the last one's last day
    SELECT l.*, GREATEST(l.due_on - %(early)s, coalesce(
               lag(l.last_day) OVER (PARTITION BY l.root, l.schedule, l.measure ORDER BY l.due_on) + 1,
               l.due_on - %(early)s)) AS opens
    FROM lasted l
),
closing AS (  -- each window closes where the next one opens (never, for the last one)
    SELECT w.*, lead(w.opens) OVER (PARTITION BY w.root, w.schedule, w.measure ORDER BY w.due_on) AS closes
    FROM windowed w
),
following AS (  -- a schedule followed by two courses follows the earlier-started one
    SELECT DISTINCT ON (a.patient_id, s.schedule) a.patient_id, s.schedule, a.root, a.display_name, a.today
    FROM active a JOIN (SELECT DISTINCT schedule, cls FROM sched) s ON s.cls = a.drug_class
    ORDER BY a.patient_id, s.schedule, a.start_date, a.current_id  -- courses sort by (start, newest version id)
),
missed AS (  -- per schedule and date: its last day has passed with a measure not recorded since it opened;
             -- a baseline only counts a measure inside its own window (a later one does not catch it up)
    SELECT DISTINCT fo.patient_id, fo.schedule, fo.display_name, wd.due_on, wd.last_day
    FROM closing wd JOIN following fo ON fo.root = wd.root AND fo.schedule = wd.schedule
    WHERE wd.last_day < fo.today
      AND NOT EXISTS (
          SELECT 1 FROM measured m
          WHERE m.patient_id = fo.patient_id AND m.measure = wd.measure AND m.day >= wd.opens
            AND (NOT wd.baseline OR wd.closes IS NULL OR m.day < wd.closes))
),
late AS (
    SELECT mi.patient_id, mi.schedule, mi.display_name, mi.due_on,
           'monitor.overdue:patient:' || mi.patient_id || ':schedule:' || mi.schedule AS problem,
           'monitor:' || mi.schedule || ':' || to_char(mi.due_on, 'YYYY-MM-DD') AS fact,
           (mi.last_day + 1)::timestamp AT TIME ZONE p.timezone AS flagged_at,
           mi.schedule || ' for ' || mi.display_name || ' was due on ' || to_char(mi.due_on, 'DD Mon YYYY')
               || ' (§5 monitoring) and nothing had been recorded.' AS message
    FROM missed mi JOIN tracker_patient p ON p.id = mi.patient_id
    WHERE NOT EXISTS (
          SELECT 1 FROM tracker_flagfact ff JOIN tracker_flag f ON f.id = ff.flag_id
          WHERE f.dedup_key = 'monitor.overdue:patient:' || mi.patient_id || ':schedule:' || mi.schedule
            AND ff.key = 'monitor:' || mi.schedule || ':' || to_char(mi.due_on, 'YYYY-MM-DD')
            AND ff.answered_at IS NULL)
),
problems AS (  -- one row per problem (an INSERT ... ON CONFLICT may touch a row once)
    INSERT INTO tracker_flag (
        patient_id, kind, severity, status, dedup_key, message, action,
        subject_type_id, subject_id, raised_at, created_at, resolution_note,
        title, occurrences, streak, last_occurred_at, priority
    )
    SELECT patient_id, 'monitor.overdue', 20, 'open', problem, (array_agg(message ORDER BY due_on DESC))[1],
           'Arrange the measurement and record it on the patient page.',
           NULL, NULL, min(flagged_at), %(now)s, '', schedule || ' (' || min(display_name) || ')', count(*), NULL,
           max(flagged_at), %(priority)s
    FROM late GROUP BY patient_id, problem, schedule
    ON CONFLICT (dedup_key) WHERE NOT (status = 'resolved') DO UPDATE SET
        message = EXCLUDED.message, occurrences = tracker_flag.occurrences + EXCLUDED.occurrences,
        last_occurred_at = GREATEST(tracker_flag.last_occurred_at, EXCLUDED.last_occurred_at)
    RETURNING id, dedup_key
)
INSERT INTO tracker_flagfact (flag_id, key, subject_type_id, subject_id, message, occurred_at, created_at, answer_note)
SELECT pr.id, l.fact, NULL, NULL, l.message, l.flagged_at, %(now)s, ''
FROM late l JOIN problems pr ON pr.dedup_key = l.problem
ON CONFLICT DO NOTHING
"""


def lower_bound_params(now: dt.datetime) -> dict[str, object]:
    from tracker import clinical

    return {
        "now": now,
        "schedules": json.dumps(clinical.get("MONITORING_SCHEDULES")),
        "early": clinical.get("MONITORING_EARLY_DAYS"),
        "grace": clinical.get("MONITORING_OVERDUE_GRACE_DAYS"),
        "priority": clinical.triage_priority("monitor.overdue"),
    }


def lower_bound(now: dt.datetime) -> int:
    """The single statement; returns the facts (overdue due items) it stored."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(LOWER_BOUND, lower_bound_params(now))
        return cursor.rowcount


def stored() -> set[tuple[str, str]]:
    """(problem, fact) of every monitoring fact in the database."""
    return set(
        execute(
            "SELECT f.dedup_key, ff.key FROM tracker_flagfact ff JOIN tracker_flag f ON f.id = ff.flag_id "
            "WHERE f.kind = 'monitor.overdue'"
        )
    )


def monitor_facts() -> int:
    return execute("SELECT count(*) FROM tracker_flagfact WHERE left(key, 8) = 'monitor:'")[0][0]


def app_sweep(now: dt.datetime) -> int:
    """The app's sweep; returns the facts it stored (its flags_raised counts problems only)."""
    from tracker.rules import SWEEPS

    before = monitor_facts()
    SWEEPS["monitoring"](now=now)
    return monitor_facts() - before


def same_set(now: dt.datetime) -> tuple[int, int, int]:
    """(facts of the app, facts of the lower bound, facts in one and not the other), both rolled back."""
    from django.db import transaction

    found = []
    for work in (app_sweep, lower_bound):
        with transaction.atomic():
            work(now)
            found.append(stored())
            transaction.set_rollback(True)
    return len(found[0]), len(found[1]), len(found[0] ^ found[1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=7)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with working_copy(args.database_url, "monitoring"):
        from bench.sweeps import meta

        now = dt.datetime.fromisoformat(str(meta()["now"]))
        for table in ("tracker_prescription", "tracker_assessment", "tracker_flag", "tracker_flagfact"):
            execute(f"VACUUM ANALYZE {table}")
        app_n, bound_n, differ = same_set(now)
        log(f"facts: app {app_n}, lower bound {bound_n}, in one only {differ}")
        app = timed("app sweep, from nothing", args.runs, lambda: app_sweep(now), warmup=1)
        bound = timed("SQL lower bound, from nothing", args.runs, lambda: lower_bound(now), warmup=1)
        log("one committed app sweep")
        app_sweep(now)
        execute("VACUUM ANALYZE tracker_flag")
        execute("VACUUM ANALYZE tracker_flagfact")
        steady = timed("app sweep, steady state", args.runs, lambda: app_sweep(now + dt.timedelta(hours=12)), warmup=1)
        by_schedule = execute(
            "SELECT split_part(dedup_key, ':', 5), count(DISTINCT f.id), count(*) FROM tracker_flag f "
            "JOIN tracker_flagfact ff ON ff.flag_id = f.id WHERE f.kind = 'monitor.overdue' GROUP BY 1 ORDER BY 1"
        )
        header = [
            "| Run | Runs | Median | p95 | SQL statements | Facts stored |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        print(
            "\n".join([*header, short_row(app), short_row(bound), short_row(steady)])
            + f"\n\nRatio app / lower bound (medians): {app.median / bound.median:.2f}x. "
            f"Same set: app {app_n} facts, lower bound {bound_n}, in one only {differ}. "
            f"Overdue items by schedule (problems, facts): {by_schedule}. "
            f"1-minute load average during the run {min(LOADS):.1f} – {max(LOADS):.1f}."
        )


if __name__ == "__main__":
    main()
