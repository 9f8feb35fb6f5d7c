"""The "today" page and the dose-log POST in process: statements, time and cProfile (issue 10, item 4).

    DJANGO_SETTINGS_MODULE=bench.settings .venv/bin/python -m bench.web_profile \
        --database-url postgres://postgres@127.0.0.1:5432/tracker_bench

Where ``bench.web``'s milliseconds go. Copies the generated clinic to ``<name>_webprof``, gives
``--patients`` patients with open take-home doses a portal login (as ``bench.web`` does), and sends the
load test's requests through Django's test client (all middleware, CSRF enforced, DEBUG off,
``bench.settings``): ``--runs`` GETs of ``/`` cycling over the patients, then ``--runs`` POSTs of
``action=taken``, each on another open planned dose of its own patient. For each kind it prints the
statements of one request with their times (an execute wrapper; BEGIN and COMMIT as Django logs them),
the median wall time of a request, of its SQL and of this process's CPU (steadier than wall time on a
shared machine), then a cProfile of ``--runs`` more requests by own and by cumulative time. cProfile's
count of Python function calls per request does not depend on the machine's load, so it is the figure
to compare between two versions of the code. The copy is dropped at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import DEFAULT_URL, create_database, db_name, drop_database, setup_django, with_name


class QueryTimer:
    """An execute wrapper that keeps each statement's wall time in ms (CaptureQueriesContext rounds to 1 ms)."""

    def __init__(self) -> None:
        self.queries: list[tuple[float, str]] = []

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append(((time.perf_counter() - started) * 1000, sql))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=40, help="requests of each kind measured")
    parser.add_argument("--patients", type=int, default=20, help="patients given a login (cycled over)")
    parser.add_argument("--save", metavar="DIR", help="also write each cProfile to DIR (get.prof, post.prof)")
    parser.add_argument("--top", type=int, default=30, help="cProfile rows printed per table")
    return parser.parse_args(argv)


def _profile_table(profile: cProfile.Profile, sort: str, top: int) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).strip_dirs().sort_stats(sort).print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    base = db_name(args.database_url)
    work = f"{base}_webprof"
    create_database(args.database_url, work, template=base)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    try:
        setup_django(with_name(args.database_url, work))
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.database_url, work)


def run(args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.web import prepare

    logins, doses = prepare(args.patients)
    from django.contrib.auth import get_user_model

    users = {u.username: u for u in get_user_model().objects.filter(username__in=[name for _, name in logins])}
    clients: dict[int, tuple[Client, str]] = {}
    for patient_id, username in logins:
        client = Client(enforce_csrf_checks=True)
        client.force_login(users[username])
        client.get("/")  # sets the CSRF cookie; compiles templates
        clients[patient_id] = (client, client.cookies[settings.CSRF_COOKIE_NAME].value)
    # Like bench.web: GETs cycle over the patients, each POST logs another open dose of its own patient.
    gets = itertools.cycle(clients.values())
    posts = iter(
        [(clients[p], own[i]) for i in range(max(map(len, doses.values()))) for p, own in doses.items() if i < len(own)]
    )

    def get() -> int:
        client, _ = next(gets)
        return client.get("/").status_code

    def post() -> int:
        (client, token), dose = next(posts)
        return client.post(f"/doses/{dose}/", {"action": "taken", "csrfmiddlewaretoken": token}).status_code

    print(f"{len(clients)} patients, {sum(map(len, doses.values()))} open planned doses; DEBUG={settings.DEBUG}, "
          f"{args.runs} runs each")  # fmt: skip
    for name, request, expected in (('"today" page (GET /)', get, 200), ("dose-log POST", post, 302)):
        request()  # warm-up
        walls, cpus, sqls, counts = [], [], [], []
        for _ in range(args.runs):
            timer = QueryTimer()
            with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timer):
                started, cpu = time.perf_counter(), time.process_time()
                status = request()
                walls.append((time.perf_counter() - started) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
            if status != expected:
                raise SystemExit(f"{name}: status {status}, expected {expected}")
            sqls.append(sum(ms for ms, _ in timer.queries))
            counts.append(len(captured))
        print(
            f"\n== {name}: {statistics.median(counts):.0f} statements (BEGIN/COMMIT included), median "
            f"{statistics.median(walls):.1f} ms (min {min(walls):.1f}), of which in execute() "
            f"{statistics.median(sqls):.1f} ms (min {min(sqls):.1f}); this process's CPU "
            f"{statistics.median(cpus):.1f} ms (min {min(cpus):.1f})"
        )
        timed = iter(timer.queries)
        for query in captured.captured_queries:  # BEGIN and COMMIT do not pass the execute wrapper
            ms = next(timed)[0] if query["sql"] not in ("BEGIN", "COMMIT") else float(query["time"]) * 1000
            print(f"  {ms:6.2f} ms  {query['sql'][:150]}")
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.runs):
            request()
        profile.disable()
        print(f"Python function calls per request: {pstats.Stats(profile).total_calls / args.runs:,.0f}\n")
        if args.save:
            profile.dump_stats(os.path.join(args.save, f"{request.__name__}.prof"))
        print(_profile_table(profile, "tottime", args.top))
        print(_profile_table(profile, "cumulative", args.top))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
