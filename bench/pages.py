"""The clinician's pages at 10,000 patients: statements, render time, p95 (issue 10 item 5; issue 17).

    DJANGO_SETTINGS_MODULE=config.settings_test .venv/bin/python -m bench.pages \\
        --database-url postgres://postgres@127.0.0.1:5432/tracker_bench

Works on a copy (``<name>_pages``, dropped at the end) with one clinician login (a superuser who is
an active prescriber of the generated clinic). Renders, with Django's test Client in-process (no
network, full middleware, DEBUG off), each page ``--runs`` times after two warm-ups: median, p95
and spread of the render time, the SQL statements per request and the response size.

Pages: the triage worklist (the admin landing page, one row per patient), the flag-by-flag list
(``?view=flags``), the caseload (by name, by 7-day adherence, filtered on remission), then the
admin patient page and the course timeline of the patient with the least and the one with the
most history.

The worklists and the caseload are measured twice: on the generated data (no flags) and after
the app's own missed-dose sweep has judged the whole 90-day history (``missed_doses.sweep(now=
data now)``, committed). Flags now fold: one open problem per (patient, drug) with one fact per
missed dose, escalated in place, so the report gives both the problem rows and the facts
(missed doses) behind them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import time

from bench.common import DEFAULT_URL, create_database, db_name, drop_database, setup_django, with_name
from bench.sweeps import LOADS, execute, log


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--unfolded", action="store_true", help="also time the worklists with one open flag per missed dose (stress)"
    )
    return parser.parse_args(argv)


def measure(client: object, url: str, runs: int) -> tuple[list[float], list[int], int]:
    """(render times, statements per request, response bytes) of ``runs`` GETs after two warm-ups."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries = [], []
    size = 0
    for index in range(runs + 2):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(url)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
            elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}")
        size = len(response.content)
        if index >= 2:
            times.append(elapsed)
            queries.append(len(captured.captured_queries))
    return times, queries, size


def pick_patients() -> dict[str, tuple[int, dict[str, int]]]:
    """The patient with the least and the one with the most history (planned doses + events + assessments)."""
    rows = execute(
        """
        SELECT p.id,
               (SELECT count(*) FROM tracker_planneddose x WHERE x.patient_id = p.id),
               (SELECT count(*) FROM tracker_doseevent x WHERE x.patient_id = p.id),
               (SELECT count(*) FROM tracker_assessment x WHERE x.patient_id = p.id),
               (SELECT count(*) FROM tracker_prescription x WHERE x.patient_id = p.id),
               (SELECT count(*) FROM tracker_flag x WHERE x.patient_id = p.id)
        FROM tracker_patient p
        """
    )
    keys = ("planned doses", "dose events", "assessments", "prescriptions", "flags")
    history = {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}
    total = {pid: h["planned doses"] + h["dose events"] + h["assessments"] for pid, h in history.items()}
    small = min(total, key=lambda pid: (total[pid], pid))
    busy = max(total, key=lambda pid: (total[pid], -pid))
    return {"small patient": (small, history[small]), "busiest patient": (busy, history[busy])}


def clinician_client() -> object:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from tracker.models import Clinic, Clinician

    clinic = Clinic.objects.order_by("id").first()
    user = get_user_model().objects.create_superuser("bench-clinician", "bench@example.invalid", None)
    Clinician.objects.create(user=user, clinic=clinic, role=Clinician.Role.PRESCRIBER, title="Dr")
    client = Client()
    client.force_login(user)
    return client


def fmt(times: list[float]) -> tuple[str, str]:
    return f"{statistics.median(times) * 1000:.1f} ms", f"{min(times) * 1000:.1f} – {max(times) * 1000:.1f} ms"


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20, method="inclusive")[-1] if len(times) > 1 else times[0]


def raise_unfolded() -> int:
    """Stress: one open warning flag per missed dose beside the problems, the shape of flags before
    they folded (each its own key, message and fact count of one); returns the flags added."""
    from tracker import clinical

    execute(
        """
        INSERT INTO tracker_flag (patient_id, kind, severity, status, dedup_key, message, action, raised_at,
            created_at, resolution_note, title, occurrences, last_occurred_at, priority)
        SELECT pd.patient_id, 'dose.missed', 20, 'open', 'bench.unfolded:planned:' || pd.id,
               'A dose was not logged.', 'Contact the patient.', pd.deadline, now(), '', 'Unfolded', 1,
               pd.deadline, %s
        FROM tracker_planneddose pd WHERE pd.status = 'missed'
        """,
        [clinical.triage_priority("dose.missed")],
    )
    execute("VACUUM ANALYZE tracker_flag")
    return execute("SELECT count(*) FROM tracker_flag WHERE dedup_key LIKE 'bench.unfolded:%'")[0][0]


TARGET = 0.3  # issue 17: worklist and caseload p95 below 300 ms at the benchmark's open flags


def pin_clock(now: dt.datetime) -> None:
    """Render the pages as of the data's 'now' (plus the seconds since), not the wall clock.

    The generated clinic ends at its 'now' with a 14-day horizon; a week later its 7-day
    windows (adherence, what is due) would hold only unjudged future doses.
    """
    from django.utils import timezone

    offset = now - timezone.now()
    wall = timezone.now
    timezone.now = lambda: wall() + offset


def raise_with_the_app(now: dt.datetime) -> dict[str, int]:
    """The app's own missed-dose sweep over the whole history (committed); what it left."""
    from tracker.rules.missed_doses import sweep

    start = time.perf_counter()
    result = sweep(now=now)
    log(f"sweep: {result.examined} doses claimed in {time.perf_counter() - start:.1f} s")
    for table in ("tracker_planneddose", "tracker_flag", "tracker_flagfact", "tracker_historicalflag"):
        execute(f"VACUUM ANALYZE {table}")
    ((problems, urgent, patients, facts),) = execute(
        """
        SELECT count(*), count(*) FILTER (WHERE severity >= 30), count(DISTINCT patient_id),
               (SELECT count(*) FROM tracker_flagfact)
        FROM tracker_flag WHERE NOT status = 'resolved'
        """
    )
    return {"missed doses": result.examined, "open problems": problems, "urgent": urgent, "patients": patients,
            "facts": facts}  # fmt: skip


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    base = db_name(args.database_url)
    work = f"{base}_pages"
    log(f"copying {base} -> {work}")
    create_database(args.database_url, work, template=base)
    try:
        setup_django(with_name(args.database_url, work))
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # the copy as the code expects it (the clinic may predate a migration)
        from django.urls import reverse

        from bench.sweeps import meta

        now = dt.datetime.fromisoformat(str(meta()["now"]))
        pin_clock(now)
        client = clinician_client()
        rows = []
        lists = (
            ("triage worklist (admin index)", reverse("admin:index"), True),
            ("flag-by-flag list (?view=flags)", reverse("admin:index") + "?view=flags", True),
            ("caseload, by name", reverse("admin:tracker_patient_caseload"), True),
            ("caseload, by 7-day adherence", reverse("admin:tracker_patient_caseload") + "?sort=adherence", True),
            ("caseload, remission only", reverse("admin:tracker_patient_caseload") + "?status=remission", True),
        )

        def run(label: str, url: str, target: bool) -> None:
            times, queries, size = measure(client, url, args.runs)
            rows.append((label, times, queries, size, target, os.getloadavg()[0]))
            log(f"{label}: median {fmt(times)[0]}, p95 {p95(times) * 1000:.1f} ms, {queries[0]} queries")

        for label, url, target in lists:
            run(f"{label}, no flags", url, target)
        log("raising every missed-dose flag of the history with the app's sweep (committed)")
        raised = raise_with_the_app(now)
        for label, url, target in lists:
            run(f"{label}, {raised['open problems']:,} open problems", url, target)
        if args.unfolded:
            log("stress: one more open flag per missed dose, as flags were before folding (SQL, committed)")
            added = raise_unfolded()
            for label, url, target in lists[:2]:
                run(f"{label}, {raised['open problems'] + added:,} open flags (stress, unfolded)", url, target)
        people = pick_patients()
        for label, (pid, _history) in people.items():
            for page, url in (
                ("patient page (admin change)", reverse("admin:tracker_patient_change", args=[pid])),
                ("course timeline", reverse("admin:tracker_patient_timeline", args=[pid])),
            ):
                run(f"{page}, {label}", url, False)
        lines = [
            "| Page | Runs | Median | p95 | Spread (min – max) | SQL statements | Response size | Load | Target |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, times, queries, size, target, load in rows:
            q = str(queries[0]) if min(queries) == max(queries) else f"{min(queries)} – {max(queries)}"
            median, spread = fmt(times)
            verdict = ("p95 < 300 ms: " + ("**met**" if p95(times) < TARGET else "**missed**")) if target else ""
            lines.append(
                f"| {name} | {len(times)} | {median} | {p95(times) * 1000:.1f} ms | {spread} | {q} "
                f"| {size / 1024:,.0f} KiB | {load:.1f} | {verdict} |"
            )
        lines.append("")
        lines.append(
            f"- flags raised by the app's sweep at {now:%Y-%m-%d %H:%M} UTC: {raised['missed doses']:,} missed doses, "
            f"{raised['open problems']:,} open problems ({raised['urgent']:,} urgent) over {raised['patients']:,} "
            f"patients, {raised['facts']:,} facts"
        )
        for label, (pid, history) in people.items():
            lines.append(f"- {label}: id {pid}, " + ", ".join(f"{n:,} {k}" for k, n in history.items()))
        lines.append(f"- 1-minute load average during the run {min(LOADS):.1f} – {max(LOADS):.1f}.")
        print("\n".join(lines))
    finally:
        from django.db import connection

        connection.close()
        drop_database(args.database_url, work)


if __name__ == "__main__":
    main()
