"""Published stats and the journal's figures on PostgreSQL (issue 14).

The LMDB journal keeps each host's stats document in a database of its own
(``journal._stats``); a PostgreSQL journal keeps them in a table of its schema,
``chronik_stats`` (source key, the msgpack document), made with the lease
tables when a host first opens the journal. A host writes its row with one
upsert, in a transaction of its own, only when its counters changed (the
publisher decides), so an idle host adds nothing to what the server sees.

``postgres_figures`` is ``journal_figures`` for a PostgreSQL journal: the
counts of its tables and what its schema occupies on the server. Both read
in a transaction that is rolled back, and neither creates anything: they work
on a journal whose hosts never published.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Final

import attrs
from eventsourcing.persistence import IntegrityError, OperationalError
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg_pool import PoolClosed

from journal._errors import JournalClosedError
from journal._pg_reader import EVENTS_TABLE, SNAPSHOTS_TABLE
from journal._postgres import create_schema

__all__ = ["STATS_TABLE", "PostgresFigures", "PostgresStats", "postgres_figures"]

STATS_TABLE: Final = "chronik_stats"


def _sql(text: str, schema: str, table: str = STATS_TABLE) -> Composed:
    return SQL(text).format(schema=Identifier(schema), table=Identifier(table))


class PostgresStats:
    """``StatsStore`` on a PostgreSQL datastore: the ``chronik_stats`` table
    of its schema. ``where`` names the journal in errors (no password)."""

    def __init__(self, datastore: PostgresDatastore, where: str = "") -> None:
        self._datastore = datastore
        self._schema = datastore.schema
        self._where = where or f"PostgreSQL schema {self._schema!r}"

    def create_table(self) -> None:
        """Create the table unless it exists (a host's first open does)."""
        create_schema(self._datastore)
        statement = _sql(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
            "key text PRIMARY KEY, document bytea NOT NULL)",
            self._schema,
        )
        # Two hosts' first opens racing both pass IF NOT EXISTS; the loser's
        # insert into the catalogue fails, and the table it wanted exists.
        with (
            contextlib.suppress(IntegrityError),
            self._datastore.transaction(commit=True) as cursor,
        ):
            cursor.execute(statement)

    def publish(self, source_key: str, value: bytes) -> None:
        with self._transaction(commit=True) as cursor:
            cursor.execute(
                _sql(
                    "INSERT INTO {schema}.{table} (key, document) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET document = EXCLUDED.document",
                    self._schema,
                ),
                (source_key, value),
            )

    def remove(self, source_key: str) -> bool:
        with self._transaction(commit=True) as cursor:
            if not _exists(cursor, self._schema, STATS_TABLE):
                return False
            cursor.execute(
                _sql("DELETE FROM {schema}.{table} WHERE key = %s", self._schema),
                (source_key,),
            )
            return cursor.rowcount > 0

    def read(self) -> dict[str, bytes]:
        with self._transaction(commit=False) as cursor:
            if not _exists(cursor, self._schema, STATS_TABLE):
                return {}  # a journal no host has opened since stats came
            cursor.execute(
                _sql("SELECT key, document FROM {schema}.{table}", self._schema)
            )
            return {str(row["key"]): bytes(row["document"]) for row in cursor}

    @contextlib.contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Cursor[DictRow]]:
        """A transaction of the datastore (rolled back unless ``commit``);
        ``JournalClosedError`` once the datastore is closed."""
        try:
            with self._datastore.transaction(commit=commit) as cursor:
                yield cursor
        except OperationalError as error:
            if isinstance(error.__cause__, PoolClosed):
                raise JournalClosedError(self._where) from error
            raise


@attrs.frozen
class PostgresFigures:
    """How big a PostgreSQL journal is, as ``JournalFigures`` says it of an
    LMDB one.

    ``events`` counts the events table, ``notifications`` is the last
    notification id (ids are gapless, so in a sound journal it equals
    ``events``: on PostgreSQL the events table is the log), ``snapshots``
    counts the snapshot table; ``disk_bytes`` is what the schema's tables
    occupy on the server with their indexes and TOAST data
    (``pg_total_relation_size``), ``tables`` the same by table. LMDB's file
    size has no counterpart: the server's files hold other databases too.
    """

    path: str
    events: int
    notifications: int
    snapshots: int
    disk_bytes: int
    tables: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def postgres_figures(datastore: PostgresDatastore, path: str) -> PostgresFigures:
    """Count the journal's tables and measure them; ``path`` names the
    journal (its URL without the password). Writes nothing."""
    schema = datastore.schema
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(
            "SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname",
            (schema,),
        )
        tables = {str(row["name"]): int(row["bytes"]) for row in cursor.fetchall()}
        events = snapshots = last = 0
        if EVENTS_TABLE in tables:
            events = _one(cursor, "SELECT count(*) FROM {schema}.{table}", schema)
            last = _one(
                cursor,
                "SELECT COALESCE(MAX(notification_id), 0) FROM {schema}.{table}",
                schema,
            )
        if SNAPSHOTS_TABLE in tables:
            snapshots = _one(
                cursor, "SELECT count(*) FROM {schema}.{table}", schema, SNAPSHOTS_TABLE
            )
    return PostgresFigures(path, events, last, snapshots, sum(tables.values()), tables)


def _one(
    cursor: Cursor[DictRow], text: str, schema: str, table: str = EVENTS_TABLE
) -> int:
    cursor.execute(_sql(text, schema, table))
    row = cursor.fetchone()
    assert row is not None
    return int(next(iter(row.values())))


def _exists(cursor: Cursor[DictRow], schema: str, table: str) -> bool:
    cursor.execute(
        "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s",
        (schema, table),
    )
    return cursor.fetchone() is not None
