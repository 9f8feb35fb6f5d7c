"""Peak memory of each sweep at 10,000 and 100,000 patients (issue 10, item 7).

    DJANGO_SETTINGS_MODULE=config.settings_test .venv/bin/python -m bench.memory \\
        --database-url postgres://postgres@127.0.0.1:5432/tracker_bench_10k30 \\
        --database-url postgres://postgres@127.0.0.1:5432/tracker_bench_100k

Each sweep runs in its own fresh Python process (``--child``), inside a transaction rolled back at
the end, so every run sees the generated state. The child starts Django, opens the connection and
imports the rules, then records its resident set (VmRSS) as the baseline; after the sweep it reads
the peak resident set (``getrusage(RUSAGE_SELF).ru_maxrss``). The growth, peak minus baseline, is
what the sweep itself held at its worst.

The sweeps judge ``--days-in`` days after the start of the generated history: the missed-dose sweep
then claims every untaken dose of those days (work proportional to the patients; the whole 30- or
90-day history would take many minutes per run at 100,000 patients), the claim passes of the others
take the questionnaires of those days, and their per-course passes read every active course of
every patient. Same databases, same instant, ten times the patients: the ratio shows whether
memory follows the data or stays at one batch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from bench.common import db_name, setup_django

SWEEP_NAMES = ("missed_doses", "symptoms", "side_effects", "ketamine")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", action="append", required=True, help="repeat: smallest clinic first")
    parser.add_argument("--sweeps", default=",".join(SWEEP_NAMES))
    parser.add_argument("--days-in", type=int, default=3, help="judge this many days into the history")
    parser.add_argument("--runs", type=int, default=2, help="processes per sweep and database")
    parser.add_argument("--timeout", type=int, default=600, help="seconds before a child is killed")
    parser.add_argument("--batch-size", type=int, default=0, help="pass to every sweep (default: its own)")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--now", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(args: argparse.Namespace) -> None:
    """Run one sweep and print its memory and time as JSON."""
    import gc

    setup_django(args.database_url[0])
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction

    from tracker.models import Assessment, PlannedDose
    from tracker.rules import SWEEPS

    connection.ensure_connection()
    ContentType.objects.get_for_model(PlannedDose)
    ContentType.objects.get_for_model(Assessment)
    gc.collect()
    baseline = rss_kib()
    now = dt.datetime.fromisoformat(args.now)
    start = time.perf_counter()
    with transaction.atomic():
        extra = {"batch_size": args.batch_size} if args.batch_size else {}
        result = SWEEPS[args.child](now=now, **extra)
        transaction.set_rollback(True)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "baseline_kib": baseline,
                "peak_kib": peak,
                "growth_kib": peak - baseline,
                "seconds": elapsed,
                "examined": result.examined,
                "flags": result.flags_raised,
            }
        )
    )


def data_now(url: str) -> tuple[dt.datetime, dict[str, object]]:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        info = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM bench_meta").fetchall()}
    now = dt.datetime.fromisoformat(str(info["now"]))
    return now - dt.timedelta(days=int(info["days"])), info


def log(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] load {os.getloadavg()[0]:.1f} {message}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    results: dict[str, dict[str, list[dict]]] = {}
    infos = {}
    loads = []
    for url in args.database_url:
        start, info = data_now(url)
        now = start + dt.timedelta(days=args.days_in)
        infos[url] = (info, now)
        results[url] = {}
        for name in args.sweeps.split(","):
            results[url][name] = []
            for run in range(args.runs):
                command = [
                    sys.executable, "-m", "bench.memory", "--child", name, "--now", now.isoformat(),
                    "--database-url", url, "--batch-size", str(args.batch_size),
                ]  # fmt: skip
                env = {**os.environ, "DATABASE_CONN_MAX_AGE": "0"}
                out = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env)
                if out.returncode != 0:
                    raise SystemExit(f"{name} on {db_name(url)} failed:\n{out.stderr[-3000:]}")
                measured = json.loads(out.stdout.strip().splitlines()[-1])
                results[url][name].append(measured)
                loads.append(os.getloadavg()[0])
                log(
                    f"{db_name(url)} {name} run {run + 1}: +{measured['growth_kib'] / 1024:.1f} MiB "
                    f"(peak {measured['peak_kib'] / 1024:.0f} MiB) in {measured['seconds']:.1f} s, "
                    f"examined {measured['examined']}, flags {measured['flags']}"
                )
    print(report(args, results, infos, loads))
    print(json.dumps(results), file=sys.stderr)


def report(args: argparse.Namespace, results: dict, infos: dict, loads: list[float]) -> str:
    urls = list(results)
    head = " | ".join(f"{infos[u][0]['patients']:,} patients: growth (peak), time, examined" for u in urls)
    lines = [
        f"| Sweep | {head} | Ratio of growth, largest / smallest | Target |",
        "|---|" + "---:|" * len(urls) + "---:|---|",
    ]
    for name in args.sweeps.split(","):
        cells = []
        growth = {}
        for url in urls:
            runs = results[url][name]
            g = statistics.median(r["growth_kib"] for r in runs) / 1024
            growth[url] = g
            peak = statistics.median(r["peak_kib"] for r in runs) / 1024
            secs = statistics.median(r["seconds"] for r in runs)
            spread = (
                f"{min(r['growth_kib'] for r in runs) / 1024:.1f} – {max(r['growth_kib'] for r in runs) / 1024:.1f}"
            )
            cells.append(f"+{g:.1f} MiB [{spread}] ({peak:.0f} MiB), {secs:.1f} s, {runs[0]['examined']:,}")
        ratio = growth[urls[-1]] / max(growth[urls[0]], 0.1)
        verdict = "**met**" if ratio <= 1.3 else "**missed**"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio:.2f}× | ≤ 1.3×: {verdict} |")
    lines.append("")
    for url in urls:
        info, now = infos[url]
        lines.append(
            f"- `{db_name(url)}`: {info['patients']:,} patients, {info['days']} days of history; "
            f"sweeps judged at {now:%Y-%m-%d %H:%M} UTC ({args.days_in} days into the history)."
        )
    if args.batch_size:
        lines.append(f"- Every sweep called with batch_size={args.batch_size} (instead of its default).")
    lines.append(f"- {args.runs} processes per cell (median; spread of the growth in brackets); 1-minute load average "
                 f"{min(loads):.1f} – {max(loads):.1f}.")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
