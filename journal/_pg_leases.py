"""The lease table in PostgreSQL (issue 14): ``journal.Leases`` on a server.

Three tables in the journal's schema: ``chronik_leases`` (a row per partition
that ever had an owner: owner, fencing token, expiry), ``chronik_lease_counter``
(one row: the last token handed out) and ``chronik_lease_members`` (until when
each host said it is alive). Every write of ``Leases`` runs in one transaction
that first locks ``chronik_leases`` in EXCLUSIVE mode, so rounds of different
hosts apply one after the other, as the LMDB journal's single writer makes
them. A fence check (``check_fence_pg``) inside an append's transaction takes
the partition's row ``FOR SHARE``: a host taking the partition over waits for
that append to commit, and the append sees the token as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from journal._errors import FencedOutError
from journal._leases import Fence, Lease, LeaseTable
from journal._postgres import LEASES_TABLE, create_schema

__all__ = ["PostgresLeaseStorage", "check_fence_pg"]

_T = TypeVar("_T")

COUNTER_TABLE = "chronik_lease_counter"
MEMBERS_TABLE = "chronik_lease_members"


def _sql(text: str, schema: str) -> Composed:
    return SQL(text).format(
        schema=Identifier(schema),
        leases=Identifier(LEASES_TABLE),
        counter=Identifier(COUNTER_TABLE),
        members=Identifier(MEMBERS_TABLE),
    )


class PostgresLeaseStorage:
    """``LeaseStorage`` on a PostgreSQL datastore (its schema)."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self._datastore = datastore
        self._schema = datastore.schema

    def create_tables(self) -> None:
        create_schema(self._datastore)
        statements = [
            "CREATE TABLE IF NOT EXISTS {schema}.{leases} ("
            "partition integer PRIMARY KEY, owner text NOT NULL, "
            "token bigint NOT NULL, expires_at double precision NOT NULL)",
            "CREATE TABLE IF NOT EXISTS {schema}.{counter} ("
            "id integer PRIMARY KEY CHECK (id = 1), token bigint NOT NULL)",
            "INSERT INTO {schema}.{counter} (id, token) VALUES (1, 0) "
            "ON CONFLICT (id) DO NOTHING",
            "CREATE TABLE IF NOT EXISTS {schema}.{members} ("
            "host text PRIMARY KEY, until double precision NOT NULL)",
        ]
        with self._datastore.transaction(commit=True) as cursor:
            for statement in statements:
                cursor.execute(_sql(statement, self._schema))

    def write(self, fn: Callable[[LeaseTable], _T]) -> _T:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(
                _sql("LOCK TABLE {schema}.{leases} IN EXCLUSIVE MODE", self._schema)
            )
            return fn(_PostgresTable(cursor, self._schema))

    def read(self, fn: Callable[[LeaseTable], _T]) -> _T:
        with self._datastore.transaction(commit=False) as cursor:
            return fn(_PostgresTable(cursor, self._schema))


class _PostgresTable:
    def __init__(self, cursor: Cursor[DictRow], schema: str) -> None:
        self._cursor = cursor
        self._schema = schema

    def _run(self, text: str, params: tuple[Any, ...] = ()) -> list[DictRow]:
        self._cursor.execute(_sql(text, self._schema), params)
        return self._cursor.fetchall() if self._cursor.description else []

    def get(self, partition: int) -> Lease | None:
        rows = self._run(
            "SELECT partition, owner, token, expires_at FROM {schema}.{leases} "
            "WHERE partition = %s",
            (partition,),
        )
        return _lease(rows[0]) if rows else None

    def put(self, lease: Lease) -> None:
        self._run(
            "INSERT INTO {schema}.{leases} (partition, owner, token, expires_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (partition) DO UPDATE SET "
            "owner = EXCLUDED.owner, token = EXCLUDED.token, "
            "expires_at = EXCLUDED.expires_at",
            (lease.partition, lease.owner, lease.token, lease.expires_at),
        )

    def put_all(self, leases: Iterable[Lease]) -> None:
        rows = list(leases)
        if not rows:
            return
        self._run(
            "INSERT INTO {schema}.{leases} (partition, owner, token, expires_at) "
            "SELECT * FROM unnest(%s::integer[], %s::text[], %s::bigint[], "
            "%s::double precision[]) ON CONFLICT (partition) DO UPDATE SET "
            "owner = EXCLUDED.owner, token = EXCLUDED.token, "
            "expires_at = EXCLUDED.expires_at",
            (
                [x.partition for x in rows],
                [x.owner for x in rows],
                [x.token for x in rows],
                [x.expires_at for x in rows],
            ),
        )

    def all(self) -> dict[int, Lease]:
        rows = self._run(
            "SELECT partition, owner, token, expires_at FROM {schema}.{leases} "
            "ORDER BY partition"
        )
        return {int(row["partition"]): _lease(row) for row in rows}

    def counter(self) -> int:
        rows = self._run("SELECT token FROM {schema}.{counter} WHERE id = 1")
        return int(rows[0]["token"]) if rows else 0

    def set_counter(self, token: int) -> None:
        self._run("UPDATE {schema}.{counter} SET token = %s WHERE id = 1", (token,))

    def put_member(self, host: str, until: float) -> None:
        self._run(
            "INSERT INTO {schema}.{members} (host, until) VALUES (%s, %s) "
            "ON CONFLICT (host) DO UPDATE SET until = EXCLUDED.until",
            (host, until),
        )

    def delete_member(self, host: str) -> None:
        self._run("DELETE FROM {schema}.{members} WHERE host = %s", (host,))

    def members(self) -> dict[str, float]:
        rows = self._run("SELECT host, until FROM {schema}.{members}")
        return {str(row["host"]): float(row["until"]) for row in rows}


def _lease(row: DictRow) -> Lease:
    return Lease(
        int(row["partition"]),
        str(row["owner"]),
        int(row["token"]),
        float(row["expires_at"]),
    )


def check_fence_pg(
    cursor: Cursor[DictRow], schema: str, fence: Fence, stream_id: Any
) -> None:
    """Raise ``FencedOutError`` unless ``fence`` still holds its partition:
    call inside the append's transaction, before inserting (the row stays
    locked ``FOR SHARE`` until it commits)."""
    cursor.execute(
        _sql(
            "SELECT owner, token FROM {schema}.{leases} WHERE partition = %s FOR SHARE",
            schema,
        ),
        (fence.partition,),
    )
    row = cursor.fetchone()
    if row is None or int(row["token"]) != fence.token:
        current = 0 if row is None else int(row["token"])
        holder = None if row is None else str(row["owner"])
        raise FencedOutError(stream_id, fence.partition, fence.token, current, holder)
