"""Shared plumbing for the benchmark scripts: Django set-up, database admin, small helpers.

Kept apart from the scripts so generate.py and sweeps.py point Django at the same kind of
database in the same way, and so only databases named ``tracker_bench*`` are ever dropped.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlparse, urlunparse

if TYPE_CHECKING:
    from bench.sweeps import Measure

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tracker_bench"
PREFIX = "tracker_bench"


def db_name(url: str) -> str:
    return urlparse(url).path.lstrip("/")


def with_name(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def check_name(name: str) -> None:
    """Refuse to touch any database that is not a benchmark database."""
    if not name.startswith(PREFIX):
        raise SystemExit(f"refusing to use database {name!r}: benchmark databases must start with {PREFIX!r}")


def setup_django(url: str) -> None:
    """Point Django at ``url`` and start it; must run before any model import."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
    import django

    django.setup()


def admin_connect(url: str):  # -> psycopg.Connection
    """An autocommit connection to the server's maintenance database (for CREATE/DROP DATABASE)."""
    import psycopg

    return psycopg.connect(with_name(url, "postgres").replace("postgres://", "postgresql://", 1), autocommit=True)


def drop_database(url: str, name: str) -> None:
    check_name(name)
    with admin_connect(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database(url: str, name: str, template: str | None = None) -> None:
    """Create ``name`` (dropping any old one); ``template`` copies a database file by file."""
    check_name(name)
    drop_database(url, name)
    with admin_connect(url) as conn:
        if template:
            check_name(template)
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')


class Progress:
    """A plain stderr progress bar (no extra dependency), redrawn at most ten times a second."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = max(total, 1), label, 0
        self.start = self.last = time.perf_counter()
        # On a terminal redraw in place; in a log file write a line every tenth of the way.
        self.tty = sys.stderr.isatty()
        self.next_line = 0.1

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.tty and (now - self.last >= 0.1 or self.done >= self.total):
            self.last = now
            self._draw(now)
        elif not self.tty and self.done / self.total >= self.next_line:
            self.next_line += 0.1
            self._draw(now)
            sys.stderr.write("\n")

    def _draw(self, now: float) -> None:
        share = min(self.done / self.total, 1.0)
        bar = "#" * int(share * 30)
        elapsed = now - self.start
        eta = elapsed / share - elapsed if share > 0 else 0.0
        sys.stderr.write(
            f"\r{self.label:<22} [{bar:<30}] {share:6.1%} {self.done}/{self.total} {elapsed:6.1f}s eta {eta:5.1f}s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            self._draw(time.perf_counter())
            sys.stderr.write("\n")


@contextmanager
def stopwatch(label: str) -> Iterator[None]:
    """Print how long a loading step took, to stderr."""
    start = time.perf_counter()
    yield
    sys.stderr.write(f"  {label}: {time.perf_counter() - start:.1f}s\n")


def copy_escape(value: object) -> str:
    """One value in PostgreSQL COPY text format."""
    if value is None:
        return "\\N"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return text


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


@contextmanager
def working_copy(url: str, suffix: str) -> Iterator[None]:
    """Copy the bench database to ``<name>_<suffix>``, point Django at it and migrate it; drop it after.

    A kill (SIGTERM) unwinds through the ``finally``, so the copy is dropped then too, and the
    bench database itself is never changed by a run.
    """
    signal.signal(signal.SIGTERM, _terminate)
    base = db_name(url)
    work = f"{base}_{suffix}"
    sys.stderr.write(f"copying {base} -> {work}\n")
    create_database(url, work, template=base)
    try:
        setup_django(with_name(url, work))
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # the copy as the code expects it
        yield
    finally:
        from django.db import connection

        connection.close()
        drop_database(url, work)


def whole_ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def short_row(m: Measure) -> str:
    """``| name | runs | median | p95 | statements | rows |``: one line of a short results table."""
    q = f"{m.queries[0]}" if min(m.queries) == max(m.queries) else f"{min(m.queries)} – {max(m.queries)}"
    cells = [m.name, str(len(m.times)), whole_ms(m.median), whole_ms(m.p95), q, f"{statistics.median(m.rows):,.0f}"]
    return "| " + " | ".join(cells) + " |"
