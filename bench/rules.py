"""The symptom, side-effect and ketamine sweeps at 10,000 patients (issue 10, item 6).

    DJANGO_SETTINGS_MODULE=config.settings_test .venv/bin/python -m bench.rules \\
        --database-url postgres://postgres@127.0.0.1:5432/tracker_bench

Works on a copy (``<name>_rules``, dropped at the end). For each sweep of ``tracker.rules.SWEEPS``:

  - first run: the sweep from nothing (the generator leaves every questionnaire and report
    unevaluated), ``--first-runs`` times, each in a transaction rolled back afterwards;
  - steady state: after one committed first run, the sweep as the 5-minute schedule runs it
    (nothing new to claim; the per-course passes still read every active course), ``--runs`` times,
    each rolled back.

Median, spread and SQL statements per run (SAVEPOINTs excluded), with the load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import statistics
import time

from bench.common import DEFAULT_URL, create_database, db_name, drop_database, setup_django, with_name
from bench.sweeps import LOADS, Measure, execute, log, timed

SWEEP_NAMES = ("symptoms", "side_effects", "ketamine")
TABLES = ("tracker_assessment", "tracker_sideeffectreport", "tracker_inclinicsession", "tracker_flag")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--first-runs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sweeps", default=",".join(SWEEP_NAMES))
    return parser.parse_args(argv)


def vacuum() -> None:
    for table in ("tracker_assessment", "tracker_sideeffectreport", "tracker_flag", "tracker_planneddose"):
        execute(f"VACUUM ANALYZE {table}")


def run_sweep(name: str, now: dt.datetime) -> int:
    from tracker.rules import SWEEPS

    result = SWEEPS[name](now=now)
    return result.flags_raised


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 1 else f"{seconds * 1000:.1f} ms"


def row(m: Measure, note: str) -> str:
    spread = f"{ms(min(m.times))} – {ms(max(m.times))}"
    queries = statistics.median(m.queries)
    q = f"{queries:.0f}" if min(m.queries) == max(m.queries) else f"{min(m.queries)} – {max(m.queries)}"
    del queries
    return (
        f"| {m.name} | {len(m.times)} | {ms(m.median)} | {spread} | {q} | {statistics.median(m.rows):,.0f} | {note} |"
    )


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    base = db_name(args.database_url)
    work = f"{base}_rules"
    log(f"copying {base} -> {work}")
    create_database(args.database_url, work, template=base)
    try:
        setup_django(with_name(args.database_url, work))
        from bench.sweeps import meta

        info = meta()
        now = dt.datetime.fromisoformat(str(info["now"]))
        counts = {t: execute(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
        unevaluated = {
            t: execute(f"SELECT count(*) FROM {t} WHERE evaluated_at IS NULL")[0][0]
            for t in ("tracker_assessment", "tracker_sideeffectreport")
        }
        log(f"rows {counts}, unevaluated {unevaluated}")
        lines = []
        for name in args.sweeps.split(","):
            started = time.perf_counter()
            first = timed(f"{name}: first run (from nothing)", args.first_runs, lambda n=name: run_sweep(n, now))
            vacuum()
            log(f"{name}: one committed run")
            run_sweep(name, now)
            vacuum()
            steady = timed(
                f"{name}: steady state (every 5 min)",
                args.runs,
                lambda n=name: run_sweep(n, now + dt.timedelta(minutes=5)),
                warmup=1,
            )
            lines.append(row(first, "flags raised per run in the Rows column"))
            lines.append(row(steady, "nothing new to claim; course passes only"))
            log(f"{name}: done in {time.perf_counter() - started:.0f} s\n{lines[-2]}\n{lines[-1]}")
        header = [
            "| Sweep | Runs | Median | Spread (min – max) | SQL statements | Rows (flags raised) | Note |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        print(
            "\n".join(header + lines)
            + f"\n\nData rows: {counts}; unevaluated at the start: {unevaluated}. 1-minute load average "
            f"during the run {min(LOADS):.1f} – {max(LOADS):.1f}."
        )
    finally:
        from django.db import connection

        connection.close()
        drop_database(args.database_url, work)


if __name__ == "__main__":
    main()
