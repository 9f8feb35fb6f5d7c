"""Storing flags as problems: new problems inserted, repeats folded in, escalations recorded.

A flag is a problem and its facts are ``FlagFact`` rows (see ``tracker.models.flags``). One call
of ``store_flags`` takes the problems a sweep or service found and, in the caller's transaction:

1. locks the open flags that already hold these problems (``SELECT … FOR UPDATE`` in id order,
   so two workers never deadlock and a clinician's concurrent resolve waits for the fold);
2. inserts the problems that are not open yet, with ``INSERT … ON CONFLICT DO NOTHING
   RETURNING`` (a problem another worker has just inserted is found and folded instead);
3. inserts every fact with ``ON CONFLICT (flag, key) DO NOTHING RETURNING``, so a fact folds
   into its problem exactly once however often it is raised;
4. updates the open problems that gained a fact or a severity: the newest fact's words, the
   severity and kind if they rose (an escalation, which reopens an acknowledged flag and
   owes a new email), and the counters moved by exactly the facts step 3 inserted;
5. writes the history rows of new and escalated flags (who: the tracker), so the change
   shows in the flag's history with when and what.

Every statement is set-based: a batch costs the same few statements whatever its size. On
PostgreSQL columns go as arrays bound in binary (``unnest``), SQLite gets multi-row VALUES.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from tracker import clinical
from tracker.models import Flag, FlagFact

CHUNK = 5000
SQLITE_MAX_PARAMS = 30_000  # SQLite allows 32,766 bound parameters a statement


@dataclass(frozen=True, slots=True)
class NewFact:
    """One fact behind a problem; ``key`` is its identity within the problem (e.g. planned:123)."""

    key: str
    message: str
    occurred_at: dt.datetime
    subject_type_id: int | None = None
    subject_id: int | None = None


@dataclass(frozen=True, slots=True)
class NewFlag:
    """A problem to raise or fold into: the columns a sweep or service decides.

    A plain value rather than an unsaved ``Flag``: a sweep builds thousands per batch, and
    model instances cost more to build than the statements that store them. Without
    ``facts`` the flag is its own single fact (keyed by its subject, else by its key), which
    is what a one-off finding is.
    """

    patient_id: int
    kind: str
    severity: int
    dedup_key: str
    message: str
    action: str
    raised_at: dt.datetime
    subject_type_id: int | None = None
    subject_id: int | None = None
    title: str = ""
    streak: int | None = None
    facts: tuple[NewFact, ...] = ()

    def all_facts(self) -> tuple[NewFact, ...]:
        if self.facts:
            return self.facts
        key = f"{self.subject_type_id}:{self.subject_id}" if self.subject_id is not None else self.dedup_key
        return (NewFact(key, self.message, self.raised_at, self.subject_type_id, self.subject_id),)


@dataclass
class StoreResult:
    """What a store changed: new problems, escalated ones (id, severity), and facts folded into open ones."""

    new: list[tuple[int, int]] = field(default_factory=list)
    escalated: list[tuple[int, int]] = field(default_factory=list)
    folded: int = 0


@dataclass(frozen=True, slots=True)
class _Open:
    id: int
    severity: int
    kind: str
    status: str


def merge_same_problem(flags: Sequence[NewFlag]) -> list[NewFlag]:
    """One NewFlag per key: facts joined, the most severe kind, the newest fact's words, the earliest start."""
    merged: dict[str, NewFlag] = {}
    for flag in flags:
        seen = merged.get(flag.dedup_key)
        if seen is None:
            merged[flag.dedup_key] = flag
            continue
        newest = flag if _newest(flag) >= _newest(seen) else seen
        top = flag if flag.severity > seen.severity else seen
        merged[flag.dedup_key] = replace(
            newest,
            kind=top.kind,
            severity=top.severity,
            raised_at=min(flag.raised_at, seen.raised_at),
            facts=seen.all_facts() + flag.all_facts(),
        )
    return list(merged.values())


def _newest(flag: NewFlag) -> dt.datetime:
    return max(fact.occurred_at for fact in flag.all_facts())


def store_flags(flags: Sequence[NewFlag], *, now: dt.datetime) -> StoreResult:
    """Raise new problems and fold the rest into their open flags; see the module docstring.

    The caller holds the transaction (``raise_flags`` opens one).
    """
    result = StoreResult()
    pending = merge_same_problem(flags)
    if not pending:
        return result
    by_key = {flag.dedup_key: flag for flag in pending}
    open_flags = _lock_open(list(by_key))
    for _attempt in range(3):
        missing = [flag for key, flag in by_key.items() if key not in open_flags]
        if not missing:
            break
        inserted = _insert_flags(missing, now)
        result.new.extend((pk, severity) for pk, _key, severity in inserted)
        for pk, key, severity in inserted:
            open_flags[key] = _Open(pk, severity, by_key[key].kind, Flag.Status.OPEN)
        # Keys not inserted were raised by another worker a moment ago: fold into theirs.
        lost = [flag.dedup_key for flag in missing if flag.dedup_key not in open_flags]
        if lost:
            open_flags.update(_lock_open(lost))
    new_ids = {pk for pk, _severity in result.new}
    facts = [(open_flags[flag.dedup_key].id, fact) for flag in pending for fact in flag.all_facts()]
    gained = _insert_facts(facts, now)
    updates = []
    for key, flag in by_key.items():
        current = open_flags[key]
        if current.id in new_ids:
            continue
        rose = flag.severity > current.severity
        count, newest = gained.get(current.id, (0, None))
        if not rose and not count:
            continue  # the same fact raised again: nothing changed
        result.folded += count
        if rose:
            result.escalated.append((current.id, flag.severity))
        updates.append(_update_values(current, flag, rose, count, newest, now))
    _update_folded(updates)
    _write_history([pk for pk, _ in result.new], "+", "Raised by the tracker", now)
    _write_history([pk for pk, _ in result.escalated], "~", "Severity raised by the tracker", now)
    return result


def _lock_open(keys: list[str]) -> dict[str, _Open]:
    rows = (
        Flag.objects.filter(dedup_key__in=keys)
        .exclude(status=Flag.Status.RESOLVED)
        .select_for_update()
        .order_by("id")
        .values_list("id", "dedup_key", "severity", "kind", "status")
    )
    return {key: _Open(pk, severity, kind, status) for pk, key, severity, kind, status in rows}


def _update_values(
    current: _Open, flag: NewFlag, rose: bool, gained: int, newest: dt.datetime | None, now: dt.datetime
) -> tuple[object, ...]:
    """The folded flag's new columns: words from the newest fact; kind and severity only ever rise."""
    kind = flag.kind if rose else current.kind
    status = Flag.Status.OPEN if rose else current.status
    return (
        current.id,
        max(flag.severity, current.severity),
        kind,
        clinical.triage_priority(kind),
        status,
        flag.message,
        flag.action,
        flag.title,
        flag.streak,
        flag.subject_type_id,
        flag.subject_id,
        gained,
        newest,
        rose,
        now,
    )


# --- statements -----------------------------------------------------------------------------

FLAG_COLUMNS: tuple[tuple[str, str], ...] = (
    ("patient_id", "bigint"),
    ("kind", "text"),
    ("severity", "smallint"),
    ("status", "text"),
    ("dedup_key", "text"),
    ("message", "text"),
    ("action", "text"),
    ("subject_type_id", "integer"),
    ("subject_id", "bigint"),
    ("raised_at", "timestamptz"),
    ("created_at", "timestamptz"),
    ("resolution_note", "text"),
    ("title", "text"),
    ("occurrences", "integer"),
    ("streak", "smallint"),
    ("last_occurred_at", "timestamptz"),
    ("priority", "smallint"),
)
FACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("flag_id", "bigint"),
    ("key", "text"),
    ("subject_type_id", "integer"),
    ("subject_id", "bigint"),
    ("message", "text"),
    ("occurred_at", "timestamptz"),
    ("created_at", "timestamptz"),
    ("answer_note", "text"),
)
UPDATE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "bigint"),
    ("severity", "smallint"),
    ("kind", "text"),
    ("priority", "smallint"),
    ("status", "text"),
    ("message", "text"),
    ("action", "text"),
    ("title", "text"),
    ("streak", "smallint"),
    ("subject_type_id", "integer"),
    ("subject_id", "bigint"),
    ("gained", "integer"),
    ("newest", "timestamptz"),
    ("rose", "boolean"),
    ("at", "timestamptz"),
)


def _flag_row(flag: NewFlag, created: object, adapt: Callable[[dt.datetime], object]) -> tuple[object, ...]:
    facts = flag.all_facts()
    return (
        flag.patient_id,
        flag.kind,
        flag.severity,
        Flag.Status.OPEN.value,
        flag.dedup_key,
        flag.message,
        flag.action,
        flag.subject_type_id,
        flag.subject_id,
        adapt(flag.raised_at),
        created,
        "",
        flag.title,
        len({fact.key for fact in facts}),
        flag.streak,
        adapt(max(fact.occurred_at for fact in facts)),
        clinical.triage_priority(flag.kind),
    )


def _insert_flags(flags: Sequence[NewFlag], now: dt.datetime) -> list[tuple[int, str, int]]:
    """Insert problems whose key has no unresolved flag; (id, key, severity) of those stored."""
    adapt = connection.ops.adapt_datetimefield_value  # as Django would store it (SQLite: UTC text)
    created = adapt(now)
    rows = [_flag_row(flag, created, adapt) for flag in flags]
    return _insert(Flag._meta.db_table, FLAG_COLUMNS, rows, "ON CONFLICT DO NOTHING RETURNING id, dedup_key, severity")


def _insert_facts(facts: Sequence[tuple[int, NewFact]], now: dt.datetime) -> dict[int, tuple[int, dt.datetime]]:
    """Insert the facts not yet held by their flag; per flag, how many it gained and the newest's time."""
    adapt = connection.ops.adapt_datetimefield_value
    created = adapt(now)
    rows = [
        (flag_id, f.key, f.subject_type_id, f.subject_id, f.message, adapt(f.occurred_at), created, "")
        for flag_id, f in facts
    ]
    gained: dict[int, tuple[int, dt.datetime]] = {}
    if connection.vendor == "postgresql":
        # Counted in the statement: one row per flag comes back, not one per fact (a backlog
        # batch inserts 20,000 facts into a few thousand flags).
        for flag_id, count, newest in _execute_as_arrays(FACT_INSERT_COUNTED, rows, fetch=True):
            before, seen = gained.get(flag_id, (0, newest))
            gained[flag_id] = (before + count, max(seen, newest))
        return gained
    when = {(flag_id, f.key): f.occurred_at for flag_id, f in facts}
    returned = _insert(FlagFact._meta.db_table, FACT_COLUMNS, rows, "ON CONFLICT DO NOTHING RETURNING flag_id, key")
    for flag_id, key in returned:
        count, newest = gained.get(flag_id, (0, when[flag_id, key]))
        gained[flag_id] = (count + 1, max(newest, when[flag_id, key]))
    return gained


FACT_INSERT_COUNTED = (
    f"WITH inserted AS (INSERT INTO {FlagFact._meta.db_table} ({', '.join(name for name, _ in FACT_COLUMNS)})"  # noqa: S608 - fixed names only
    f" SELECT * FROM unnest({', '.join(f'%b::{kind}[]' for _, kind in FACT_COLUMNS)})"
    " ON CONFLICT DO NOTHING RETURNING flag_id, occurred_at)"
    " SELECT flag_id, count(*), max(occurred_at) FROM inserted GROUP BY flag_id"
)


def _insert(table: str, columns: Sequence[tuple[str, str]], rows: list[tuple], tail: str) -> list[tuple]:
    names = ", ".join(name for name, _ in columns)
    returned: list[tuple] = []
    if not rows:
        return returned
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%b::{kind}[]" for _, kind in columns)
        sql = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {tail}"  # noqa: S608 - fixed names only
        return _execute_as_arrays(sql, rows, fetch=True)
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, SQLITE_MAX_PARAMS // len(columns)):
            sql = f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(chunk))} {tail}"  # noqa: S608 - placeholders only
            cursor.execute(sql, [value for row in chunk for value in row])
            returned.extend(cursor.fetchall())
    return returned


def _execute_as_arrays(sql: str, rows: list[tuple], *, fetch: bool) -> list[tuple]:
    """PostgreSQL: run ``sql`` once per chunk of ``rows``, bound as one binary array per column."""
    returned: list[tuple] = []
    with _binary_cursor() as cursor:
        for chunk in _chunks(rows, CHUNK):
            cursor.execute(sql, [list(column) for column in zip(*chunk, strict=True)])
            if fetch:
                returned.extend(cursor.fetchall())
    return returned


# The folded flags' counters move by exactly the facts this call inserted (the RETURNING of
# step 3), not recounted from every fact of the flag: a problem open for months has hundreds,
# and reading them all on each fold cost more than the rest of a backlog sweep (17.8 of 45 s).
# It stays exact because every writer of a flag's facts holds the flag's row lock: this call
# (``_lock_open``) and ``services.flags.answer_facts``, which recounts the unanswered facts
# itself; a fact raised again is not returned, so a retried batch adds nothing.
UPDATE_SET = """
    severity = v.severity, kind = v.kind, priority = v.priority, status = v.status,
    message = v.message, action = v.action, title = v.title,
    streak = COALESCE(v.streak, {t}.streak),
    subject_type_id = COALESCE(v.subject_type_id, {t}.subject_type_id),
    subject_id = COALESCE(v.subject_id, {t}.subject_id),
    escalated_at = CASE WHEN v.rose THEN v.at ELSE {t}.escalated_at END,
    notified_at = CASE WHEN v.rose THEN NULL ELSE {t}.notified_at END,
    occurrences = {t}.occurrences + v.gained,
    last_occurred_at = CASE
        WHEN v.newest IS NOT NULL AND ({t}.last_occurred_at IS NULL OR v.newest > {t}.last_occurred_at)
        THEN v.newest ELSE {t}.last_occurred_at END
"""


def _update_folded(rows: list[tuple[object, ...]]) -> None:
    if not rows:
        return
    table = Flag._meta.db_table
    names = ", ".join(name for name, _ in UPDATE_COLUMNS)
    assignments = UPDATE_SET.format(t=table)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%b::{kind}[]" for _, kind in UPDATE_COLUMNS)
        sql = f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v({names}) WHERE {table}.id = v.id"  # noqa: S608 - fixed names only
        _execute_as_arrays(sql, rows, fetch=False)
        return
    adapt = connection.ops.adapt_datetimefield_value
    stamps = {i for i, (_name, kind) in enumerate(UPDATE_COLUMNS) if kind == "timestamptz"}
    rows = [tuple(adapt(value) if i in stamps else value for i, value in enumerate(row)) for row in rows]
    one = "(" + ", ".join(["%s"] * len(UPDATE_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, SQLITE_MAX_PARAMS // len(UPDATE_COLUMNS)):
            values = ", ".join([one] * len(chunk))
            sql = (
                f"WITH v({names}) AS (VALUES {values}) UPDATE {table} SET {assignments} FROM v WHERE {table}.id = v.id"  # noqa: S608 - placeholders only
            )
            cursor.execute(sql, [value for row in chunk for value in row])


def _write_history(ids: list[int], kind: str, reason: str, now: dt.datetime) -> None:
    """simple-history rows for flags changed in SQL (``+`` raised, ``~`` changed), by the tracker (no user).

    The ORM's history signals do not see raw statements; without these rows a flag raised by a
    sweep would have no creation entry, and an escalation no record of when it happened.
    """
    if not ids:
        return
    history = Flag.history.model._meta.db_table
    columns = [f.column for f in Flag._meta.concrete_fields]
    names = ", ".join(columns)
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        for chunk in _chunks(ids, SQLITE_MAX_PARAMS):
            ids_in = ", ".join(["%s"] * len(chunk))
            into = f"{history} ({names}, history_date, history_change_reason, history_type, history_user_id)"
            sql = (
                f"INSERT INTO {into} SELECT {names}, %s, %s, %s, NULL FROM {Flag._meta.db_table} WHERE id IN ({ids_in})"  # noqa: S608 - fixed names only
            )
            cursor.execute(sql, [adapt(now), reason, kind, *chunk])


def _chunks(rows: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _binary_cursor(*, binary_results: bool = False) -> CursorWrapper:
    """A cursor on Django's connection (same transaction) that sends ``%b`` parameters in binary.

    Django's psycopg cursors bind parameters on the client, as text: for a 5,000-element
    array that costs 20 to 40 times what psycopg's binary dumpers do (measured: 65 ms against
    2.4 ms for 5,000 messages). The wrapper keeps Django's query log and counting.
    ``binary_results`` also fetches rows in binary: for the sweep's claim, whose thousands of
    timestamps otherwise go through the text parser (two per row, the largest Python cost
    of a backlog sweep). Timestamps still come back aware, in the connection's zone (UTC).
    """
    import psycopg  # PostgreSQL only; SQLite installs need not import it

    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    if binary_results:
        raw.format = psycopg.pq.Format.BINARY
    return CursorDebugWrapper(raw, connection) if connection.queries_logged else CursorWrapper(raw, connection)
