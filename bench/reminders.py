"""The dose-reminder sweep (issue 15) at 10,000 patients, beside its SQL lower bound.

    DJANGO_SETTINGS_MODULE=config.settings_test .venv/bin/python -m bench.reminders \\
        --database-url postgres://postgres@127.0.0.1:5432/tracker_bench

Works on a copy (``<name>_reminders``, migrated as the code expects it, dropped at the end);
``tracker_bench`` itself is never written. The generated clinic has no reminder choices, so the
copy gets them first (committed, as set-up): every patient an email address, every current
prescription of a medicine taken at home reminded, ``minutes_before`` spread over the portal's
choices by prescription id, and quiet hours 22:00-07:00 for one patient in three (23:00-08:00
for one in ten more), so the plan's quiet-hours arithmetic is exercised. The sweep runs the
morning after the generator's "now", at 07:58 UTC: the 08:00 doses of the London patients are
due and most of their reminders are owed.

Measured, each run in a transaction rolled back:

  - plan: the app's ``tracker.rules.reminders.plan`` (one read, one bulk insert);
  - the lower bound of planning: one hand-written INSERT ... SELECT computing the same send
    times, quiet hours included, on the patient's wall clock (the set is checked to be the same);
  - sweep: the app's whole sweep as beat runs it (plan, then send the owed reminders batch after
    batch within its time budget, email to Django's locmem backend, push off).

Median, p95, SQL statements per run (SAVEPOINTs excluded), with the load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics

from bench.common import DEFAULT_URL, short_row, working_copy
from bench.sweeps import LOADS, execute, log, timed

# The portal's choices (services.reminders.MINUTES_BEFORE_CHOICES), spread by prescription id.
SETUP = """
UPDATE tracker_patient SET email = 'patient' || id || '@example.org' WHERE email = '';
INSERT INTO tracker_prescriptionreminder (prescription_id, patient_id, enabled, minutes_before, updated_at)
SELECT rx.id, rx.patient_id, true, (ARRAY[0, 5, 10, 15, 15, 15, 30, 60, 120])[1 + rx.id %% 9], %(now)s
FROM tracker_prescription rx JOIN tracker_drug d ON d.id = rx.drug_id
WHERE rx.entered_in_error_at IS NULL AND NOT d.in_clinic_only
  AND EXISTS (SELECT 1 FROM tracker_planneddose pd WHERE pd.prescription_id = rx.id AND pd.due_at > %(now)s)
ON CONFLICT DO NOTHING;
INSERT INTO tracker_remindersettings (patient_id, quiet_from, quiet_until, updated_at)
SELECT id, CASE WHEN id %% 3 = 0 THEN time '22:00' ELSE time '23:00' END,
       CASE WHEN id %% 3 = 0 THEN time '07:00' ELSE time '08:00' END, %(now)s
FROM tracker_patient WHERE id %% 3 = 0 OR id %% 10 = 1
ON CONFLICT DO NOTHING;
"""

# The same planning as tracker.rules.reminders.plan, in one statement: candidates, the send
# time (due minus the minutes), moved to the end of the quiet hours when it falls inside them
# (on the patient's wall clock), "quiet" when they outlast the due time; rows whose time has come.
LOWER_BOUND = """
WITH cand AS (
    SELECT pd.id, pd.patient_id, pd.due_at, p.timezone AS zone, s.quiet_from, s.quiet_until,
           pd.due_at - make_interval(mins => r.minutes_before) AS want
    FROM tracker_planneddose pd
    JOIN tracker_prescription rx ON rx.id = pd.prescription_id AND rx.entered_in_error_at IS NULL
    JOIN tracker_drug d ON d.id = rx.drug_id AND NOT d.in_clinic_only
    JOIN tracker_prescriptionreminder r ON r.prescription_id = rx.id AND r.enabled
    JOIN tracker_patient p ON p.id = pd.patient_id
    LEFT JOIN tracker_remindersettings s ON s.patient_id = pd.patient_id
    WHERE pd.status = 'pending' AND pd.deadline >= %(now)s AND pd.due_at <= %(now)s + make_interval(mins => %(ahead)s)
      AND NOT EXISTS (SELECT 1 FROM tracker_dosereminder dr WHERE dr.planned_dose_id = pd.id)
),
walled AS (
    SELECT c.*, (c.want AT TIME ZONE c.zone) AS wall FROM cand c
),
quiet AS (
    SELECT w.*,
           w.quiet_from IS NOT NULL AND CASE
               WHEN w.quiet_from < w.quiet_until THEN w.wall::time >= w.quiet_from AND w.wall::time < w.quiet_until
               ELSE w.wall::time >= w.quiet_from OR w.wall::time < w.quiet_until END AS inside
    FROM walled w
),
ends AS (
    SELECT q.*,
           CASE WHEN q.inside THEN
               ((CASE WHEN q.wall::time < q.quiet_until THEN q.wall::date ELSE q.wall::date + 1 END)
                + q.quiet_until) AT TIME ZONE q.zone
           END AS quiet_end
    FROM quiet q
),
planned AS (
    SELECT e.id, e.patient_id,
           CASE WHEN e.inside AND e.quiet_end <= e.due_at THEN e.quiet_end ELSE e.want END AS send_at,
           CASE WHEN e.inside AND e.quiet_end > e.due_at THEN 'quiet' ELSE 'pending' END AS status
    FROM ends e
)
INSERT INTO tracker_dosereminder (planned_dose_id, patient_id, send_at, status, sent_at, channels, created_at)
SELECT id, patient_id, send_at, status, NULL, '', %(now)s FROM planned WHERE send_at <= %(now)s
ON CONFLICT DO NOTHING
"""


def lower_bound(now: dt.datetime) -> int:
    from django.db import connection

    from tracker.models.reminders import MINUTES_BEFORE_MAX

    with connection.cursor() as cursor:
        cursor.execute(LOWER_BOUND, {"now": now, "ahead": MINUTES_BEFORE_MAX})
        return cursor.rowcount


def outbox() -> set[tuple]:
    return set(execute("SELECT planned_dose_id, send_at, status FROM tracker_dosereminder"))


def same_set(now: dt.datetime) -> tuple[int, int, int, dict[str, int]]:
    """(rows of the app, rows of the lower bound, rows in one only, app rows by status), rolled back."""
    from django.db import transaction

    from tracker.rules import reminders

    found = []
    for work in (lambda: reminders.plan(now=now), lambda: lower_bound(now)):
        with transaction.atomic():
            work()
            found.append(outbox())
            transaction.set_rollback(True)
    by_status: dict[str, int] = {}
    for _, _, status in found[0]:
        by_status[status] = by_status.get(status, 0) + 1
    return len(found[0]), len(found[1]), len(found[0] ^ found[1]), by_status


STATEMENTS: list[int] = []  # per sweep run, counted here: the query log keeps only the last 9,000


def sweep(now: dt.datetime) -> int:
    """The app's sweep as beat runs it (``reminders.sweep``: plan, then send within the budget);
    returns reminders planned + emails sent (to locmem, emptied each run)."""
    from django.core import mail
    from django.db import connection

    from bench.sweeps import NON_WORK
    from tracker.rules import reminders

    count = [0]

    def counting(execute, sql, params, many, context):
        if not sql.startswith(NON_WORK):
            count[0] += 1
        return execute(sql, params, many, context)

    mail.outbox = []
    with connection.execute_wrapper(counting):  # what reminders.sweep does, with its two counts
        planned = reminders.plan(now=now)
        sent, failed = reminders.send_owed(now=now)
    STATEMENTS.append(count[0])
    if failed or len(mail.outbox) != sent:
        raise SystemExit(f"{failed} reminders failed; {len(mail.outbox)} emails for {sent} sent")
    return planned + sent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sweep-runs", type=int, default=3)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with working_copy(args.database_url, "reminders"):
        from django.conf import settings

        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        settings.VAPID_PRIVATE_KEY = ""  # push off: the bench measures the sweep, not a push service
        from bench.sweeps import meta

        generated = dt.datetime.fromisoformat(str(meta()["now"]))
        now = dt.datetime.combine(generated.date() + dt.timedelta(days=1), dt.time(7, 58), tzinfo=dt.UTC)
        from django.db import connection

        with connection.cursor() as cursor:
            for statement in SETUP.strip().split(";\n"):
                cursor.execute(statement, {"now": generated})
        choices = execute("SELECT count(*), count(DISTINCT patient_id) FROM tracker_prescriptionreminder")[0]
        quiet = execute("SELECT count(*) FROM tracker_remindersettings")[0][0]
        for table in ("tracker_planneddose", "tracker_prescriptionreminder", "tracker_remindersettings"):
            execute(f"VACUUM ANALYZE {table}")
        log(f"set-up: {choices[0]} prescriptions reminded for {choices[1]} patients, {quiet} with quiet hours")
        from tracker.rules.reminders import SEND_BUDGET_SECONDS

        app_n, bound_n, differ, by_status = same_set(now)
        log(f"outbox rows: app {app_n}, lower bound {bound_n}, in one only {differ}; app by status {by_status}")
        plan = timed("plan (app)", args.runs, lambda: sweep_plan(now), warmup=1)
        bound = timed("plan, SQL lower bound", args.runs, lambda: lower_bound(now), warmup=1)
        whole = timed("sweep as beat runs it: plan + send", args.sweep_runs, lambda: sweep(now), warmup=0)
        whole.queries = STATEMENTS[-len(whole.times) :]
        sent = statistics.median(whole.rows) - app_n
        per = (whole.median - plan.median) / sent * 1000 if sent else 0.0
        header = [
            "| Run | Runs | Median | p95 | SQL statements | Rows (planned + sent) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        print(
            "\n".join([*header, short_row(plan), short_row(bound), short_row(whole)])
            + f"\n\nPlan / lower bound (medians): {plan.median / bound.median:.2f}x. "
            f"Same set: app {app_n} outbox rows, lower bound {bound_n}, in one only {differ}; by status {by_status}. "
            f"Sending: {sent:,.0f} emails a run, about {per:.2f} ms per reminder "
            f"(budget {SEND_BUDGET_SECONDS:.0f} s a run). "
            f"Set-up: {choices[0]:,} prescriptions reminded for {choices[1]:,} patients, {quiet:,} with quiet hours; "
            f"now {now:%Y-%m-%d %H:%M} UTC. "
            f"1-minute load average during the run {min(LOADS):.1f} – {max(LOADS):.1f}."
        )


def sweep_plan(now: dt.datetime) -> int:
    from tracker.rules import reminders

    return reminders.plan(now=now)


if __name__ == "__main__":
    main()
