"""Verifying a PostgreSQL journal: both hash chains, as ``journal._verify`` on LMDB.

On PostgreSQL the log and the events are one table (``notification_id`` is a
column), so the walk reads rows in position order: the ids are gapless, each
row's ``hash`` matches its content chained to the previous event of its stream,
each ``log_hash`` chains to the previous position's, and the log ends at the
head the writers recorded in ``chronik_heads`` with the same hash. Pages are
read in short statements, so verifying neither blocks writers nor holds a
snapshot open; positions committed after the walk began are newer than it.

The snapshots table's rows are chained stream by stream (no positions), as the
LMDB journal's snapshot tables are, and checked the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from journal._chain import ZERO_HASH, event_hash, log_hash, sha256
from journal._keys import text_event_key
from journal._postgres import HEADS_TABLE
from journal._verify import Problem, Progress, VerifyReport, make_report

__all__ = ["PostgresChecker"]

PAGE: Final = 2000


class PostgresChecker:
    """Collects problems while walking one events table's chains."""

    def __init__(self, datastore: PostgresDatastore, events_table: str) -> None:
        self._datastore = datastore
        self._table = events_table
        self.problems: list[Problem] = []
        self.events = 0
        self.last_id: int | None = None
        self.last_hash: bytes | None = None
        names = {
            "schema": Identifier(datastore.schema),
            "table": Identifier(events_table),
            "heads": Identifier(HEADS_TABLE),
        }
        # Each row with the stored hash of the event before it in its stream.
        self._page_statement = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, "
            "e.topic, e.state, e.hash, e.log_hash, p.hash AS previous "
            "FROM {schema}.{table} e LEFT JOIN LATERAL (SELECT hash "
            "FROM {schema}.{table} b WHERE b.originator_id = e.originator_id "
            "AND b.originator_version < e.originator_version "
            "ORDER BY b.originator_version DESC LIMIT 1) p ON true "
            "WHERE e.notification_id >= %s AND e.notification_id <= %s "
            "ORDER BY e.notification_id LIMIT %s"
        ).format(**names)
        self._stream_statement = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, "
            "e.topic, e.state, e.hash, e.log_hash, l.log_hash AS previous_log "
            "FROM {schema}.{table} e LEFT JOIN {schema}.{table} l "
            "ON l.notification_id = e.notification_id - 1 "
            "WHERE e.originator_id = %s ORDER BY e.originator_version"
        ).format(**names)
        self._head_statement = SQL(
            "SELECT notification_id, log_hash FROM {schema}.{heads} "
            "WHERE events_table = %s"
        ).format(**names)
        self._end_statement = SQL(
            "SELECT notification_id, log_hash FROM {schema}.{table} "
            "ORDER BY notification_id DESC LIMIT 1"
        ).format(**names)

    # -- the whole journal ------------------------------------------------------

    def check_log(self, progress: Progress | None) -> None:
        """Walk the log up to the head recorded when the walk began."""
        head = self._head()
        stop = 0 if head is None else head[0]
        previous, expected = ZERO_HASH, 1
        while True:
            page = self._rows(self._page_statement, (expected, stop, PAGE))
            for row in page:
                position = int(row["notification_id"])
                if position != expected:
                    self._add(
                        expected,
                        f"the log jumps from position {expected - 1} to "
                        f"{position}: events were removed or renumbered",
                    )
                previous = self._check_row(row, row["previous"], previous)
                expected = position + 1
                self.last_id, self.last_hash = position, previous
            if progress is not None and page:
                progress(self.events)
            if len(page) < PAGE:
                break
        self._check_head(head)

    def check_end(self) -> None:
        """In one snapshot: the table ends at the recorded head, with its hash."""
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(self._head_statement, (self._table,))
            head = cursor.fetchone()
            cursor.execute(self._end_statement)
            end = cursor.fetchone()
        head_id = 0 if head is None else int(head["notification_id"])
        last = 0 if end is None else int(end["notification_id"])
        if last > head_id:
            self._add(
                head_id + 1,
                f"the log goes on to position {last} past the journal's head at "
                f"{head_id}: events were inserted at the end",
            )
        elif (
            last == head_id
            and head is not None
            and end is not None
            and bytes(end["log_hash"]) != bytes(head["log_hash"])
        ):
            self._add(head_id, "the log's last hash differs from the head")

    def check_snapshots(self, table: str) -> None:
        """The chain of each stream of a snapshots table, in pages of rows in
        (stream, version) order."""
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state, hash "
            "FROM {schema}.{table} WHERE (originator_id, originator_version) > "
            "(%s, %s) ORDER BY originator_id, originator_version LIMIT %s"
        ).format(schema=Identifier(self._datastore.schema), table=Identifier(table))
        after: tuple[str, int] = ("", -(1 << 63))
        stream, previous = None, ZERO_HASH
        while True:
            page = self._rows(statement, (*after, PAGE))
            for row in page:
                originator_id = str(row["originator_id"])
                version = int(row["originator_version"])
                if originator_id != stream:
                    stream, previous = originator_id, ZERO_HASH
                key = text_event_key(originator_id, version)
                digest = bytes(row["hash"])
                expected = event_hash(
                    previous,
                    key,
                    None,
                    row["topic"],
                    bytes(row["state"]),
                    digest=sha256,
                )
                if digest != expected:
                    self._add(
                        None,
                        f"the {table} event's hash does not match its content and "
                        "the event before it in its stream",
                        originator_id,
                        version,
                    )
                previous = digest
            if len(page) < PAGE:
                return
            after = (
                str(page[-1]["originator_id"]),
                int(page[-1]["originator_version"]),
            )

    # -- one stream --------------------------------------------------------------

    def check_stream(self, originator_id: UUID | str) -> None:
        """One stream's chain, and each of its events' place in the log chain."""
        previous_event = ZERO_HASH
        for row in self._rows(self._stream_statement, (str(originator_id),)):
            position = int(row["notification_id"])
            previous_log = row["previous_log"]
            if previous_log is None and position > 1:
                self._add(position - 1, "the log entry is missing")
                previous_event = bytes(row["hash"])
                self.events += 1
                continue
            self._check_row(
                row,
                previous_event,
                ZERO_HASH if previous_log is None else bytes(previous_log),
            )
            previous_event = bytes(row["hash"])

    # -- checks ------------------------------------------------------------------

    def _check_row(
        self, row: DictRow, previous_event: Any, previous_log: bytes
    ) -> bytes:
        """Check one row's two hashes; return its stored log hash."""
        self.events += 1
        position = int(row["notification_id"])
        stream, version = str(row["originator_id"]), int(row["originator_version"])
        key = text_event_key(stream, version)
        digest, stored = bytes(row["hash"]), bytes(row["log_hash"])
        expected = event_hash(
            ZERO_HASH if previous_event is None else bytes(previous_event),
            key,
            position,
            row["topic"],
            bytes(row["state"]),
            digest=sha256,
        )
        if digest != expected:
            self._add(
                position,
                "the event's hash does not match its content and the event before "
                "it in its stream: it was altered, or an event before it was "
                "removed, altered or inserted",
                stream,
                version,
            )
        if stored != log_hash(previous_log, position, key, digest, digest=sha256):
            self._add(
                position,
                "the log's hash does not chain from the previous position: entries "
                "were altered, reordered, inserted or removed here",
                stream,
                version,
            )
        return stored

    def _check_head(self, head: tuple[int, bytes] | None) -> None:
        """The walk reached the head recorded when it began, with its hash."""
        if head is None:
            return
        head_id, head_hash = head
        last = self.last_id or 0
        if last < head_id:
            self._add(
                last + 1,
                f"the log ends at position {last} but the journal's head is at "
                f"{head_id}: events at the end were removed",
            )
        elif head_hash != self.last_hash:
            self._add(head_id, "the log's hash at the head differs from the head")

    def _head(self) -> tuple[int, bytes] | None:
        rows = self._rows(self._head_statement, (self._table,))
        if not rows:
            return None
        return int(rows[0]["notification_id"]), bytes(rows[0]["log_hash"])

    def _rows(self, statement: Any, params: Sequence[Any]) -> list[DictRow]:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, params, prepare=True)
            return cursor.fetchall()

    def _add(
        self,
        position: int | None,
        message: str,
        originator_id: str | None = None,
        version: int | None = None,
    ) -> None:
        self.problems.append(Problem(position, message, originator_id, version))

    def report(self) -> VerifyReport:
        # On PostgreSQL the log is the events table: as many positions as events.
        return make_report(
            self.problems, self.events, self.events, self.last_id, self.last_hash
        )
