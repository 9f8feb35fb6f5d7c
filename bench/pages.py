"""The clinician worklist and a patient's pages at 10,000 patients: queries and render time (issue 10, item 5).

    DJANGO_SETTINGS_MODULE=config.settings_test .venv/bin/python -m bench.pages \\
        --database-url postgres://postgres@127.0.0.1:5432/tracker_bench

Works on a copy (``<name>_pages``, dropped at the end) with one clinician login (a superuser who is
an active prescriber of the generated clinic). Renders, with Django's test Client in-process (no
network, full middleware), the admin index (the flag worklist), the admin patient page and the
patient's course timeline, for the patient with the least and the one with the most history, each
``--runs`` times after two warm-ups: median and spread of the render time and the SQL statements.

The worklist is measured twice: on the generated data (no flags) and after the missed-dose flags
of the whole history are raised (the SQL statement of bench/sql.py, committed), so the query count
can be compared at 0 and at hundreds of thousands of flags.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import statistics
import time

from bench.common import DEFAULT_URL, create_database, db_name, drop_database, setup_django, with_name
from bench.sweeps import LOADS, execute, log, lower_bound


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=20)
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
        from django.urls import reverse

        from bench.sweeps import meta

        now = dt.datetime.fromisoformat(str(meta()["now"]))
        client = clinician_client()
        rows = []
        worklist = reverse("admin:index")
        times, queries, size = measure(client, worklist, args.runs)
        rows.append(("worklist (admin index), 0 flags", times, queries, size))
        log(f"worklist at 0 flags: {fmt(times)[0]}, {queries[0]} queries")
        log("raising every missed-dose flag of the history (SQL, committed)")
        lower_bound(now)
        execute("VACUUM ANALYZE tracker_flag")
        flags = execute("SELECT count(*) FROM tracker_flag")[0][0]
        times, queries, size = measure(client, worklist, args.runs)
        rows.append((f"worklist (admin index), {flags:,} flags", times, queries, size))
        log(f"worklist at {flags} flags: {fmt(times)[0]}, {queries[0]} queries")
        people = pick_patients()
        for label, (pid, _history) in people.items():
            for page, url in (
                ("patient page (admin change)", reverse("admin:tracker_patient_change", args=[pid])),
                ("course timeline", reverse("admin:tracker_patient_timeline", args=[pid])),
            ):
                times, queries, size = measure(client, url, args.runs)
                rows.append((f"{page}, {label}", times, queries, size))
                log(f"{page} {label}: {fmt(times)[0]}, {queries[0]} queries")
        lines = [
            "| Page | Runs | Render median | Spread (min – max) | SQL statements | Response size |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, times, queries, size in rows:
            q = str(queries[0]) if min(queries) == max(queries) else f"{min(queries)} – {max(queries)}"
            median, spread = fmt(times)
            lines.append(f"| {name} | {len(times)} | {median} | {spread} | {q} | {size / 1024:,.0f} KiB |")
        lines.append("")
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
