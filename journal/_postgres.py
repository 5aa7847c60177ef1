"""chronik's application recorder on PostgreSQL, a subclass of eventsourcing's.

It keeps the library's table layout and its serialisation of appends (``LOCK TABLE
... IN EXCLUSIVE MODE``, so notification ids are issued in commit order) and changes
three things:

- stream ids are ``text``: chronik's run ids are strings like ``"order-1"``;
- notification ids are assigned from the table's last id inside the locked insert,
  not from a sequence, so a refused append leaves no hole: ids are gapless, as in
  the LMDB journal (a sequence's ``nextval`` is not rolled back);
- ``create_table()`` also creates the PostgreSQL schema it names;
- every row carries the two hash chains of the LMDB journal (``journal._chain``):
  ``hash`` chains the event to the previous event of its stream, ``log_hash`` chains
  the position to the previous position; they are computed in Python under the
  table lock, and each transaction records its last position and log hash in
  ``chronik_heads`` (the head ``verify`` must end at, as LMDB's meta head);
- concurrent appends of one process are group-committed, as in the LMDB journal
  (``journal._groupcommit``): the callers queued while one transaction commits
  share the next one. It locks the table once, finds the requests that conflict
  (a stored (stream, version), one taken earlier in the group, a tracking position
  not past the recorded one) and refuses each of them alone, inserts the others'
  events with one statement (notification ids gapless, in queue order), notifies
  once and commits once.

State stays ``bytea``: whatever the transcoder made (msgpack, for chronik).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast
from uuid import UUID

import attrs
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
    Tracking,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresProcessRecorder,
)
from eventsourcing.utils import retry
from psycopg import Cursor, Rollback
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

from journal._chain import ZERO_HASH, event_hash, log_hash, sha256
from journal._errors import (
    EventConflictError,
    FencedOutError,
    JournalConfigError,
    TrackingConflictError,
)
from journal._groupcommit import CommitStats, GroupCommitter, Write, run_checked
from journal._keys import text_event_key
from journal._leases import Fence, check_covered
from journal._pg_append import AppendCall, append_function, topic_bytes
from journal._pg_format import CREATE_LOCK

__all__ = [
    "BulkStreams",
    "PostgresJournalProcessRecorder",
    "PostgresJournalRecorder",
    "PostgresSnapshotRecorder",
    "create_schema",
]

# What a unique violation on the events table's primary key says, after "Key ".
_KEY_PREFIX = "Key (originator_id, originator_version)=("
_KEY_SUFFIX = ") already exists."

_Key = tuple[str, int]  # (originator id, originator version)
_Outcome = tuple[Any, BaseException | None]

LEASES_TABLE = "chronik_leases"  # journal._pg_leases makes it
HEADS_TABLE = "chronik_heads"  # per events table: last position and its log hash


@attrs.frozen(eq=False)
class _Append:
    """One caller's ``insert_events``: its events, and the tracking position they
    were caused by (process recorders only), admitted or refused as one."""

    events: tuple[StoredEvent, ...]
    tracking: Tracking | None
    fence: Fence | None = None  # refused whole unless its token still holds

    def __call__(self, group: _Group) -> range:
        return group.admit(self)


class _Pending:
    """A query sent down the pipeline, its rows read when first needed: the
    queries of one transaction's checks travel to the server together."""

    def __init__(self, conn: Any, statement: Any, params: Sequence[Any]) -> None:
        self._cursor: Cursor[DictRow] = conn.cursor()
        self._cursor.execute(statement, params, prepare=True)

    def rows(self) -> list[DictRow]:
        try:
            return self._cursor.fetchall()
        finally:
            self._cursor.close()


class _Chain:
    """The heads of both hash chains, read under the table lock, advanced by
    each event linked: the next position, its log hash and its stream's hash."""

    def __init__(self, log_head: Sequence[DictRow], stream_heads: Sequence[DictRow]):
        row = log_head[0] if log_head else None
        # Invariant: last_id is the last position given, last_log_hash its hash.
        self.last_id = 0 if row is None else int(row["notification_id"])
        self.last_log_hash = ZERO_HASH if row is None else bytes(row["log_hash"])
        # Invariant: per stream, the hash of its last event stored or linked.
        self.streams = {str(r["originator_id"]): bytes(r["hash"]) for r in stream_heads}

    def link(self, events: Sequence[StoredEvent]) -> tuple[Any, ...]:
        """The insert's columns for ``events``, positioned after the head."""
        ids: list[int] = []
        hashes: list[bytes] = []
        log_hashes: list[bytes] = []
        for event in events:
            self.last_id += 1
            stream = str(event.originator_id)
            key = text_event_key(stream, event.originator_version)
            digest = event_hash(
                self.streams.get(stream, ZERO_HASH),
                key,
                self.last_id,
                event.topic,
                event.state,
                digest=sha256,
            )
            self.streams[stream] = digest
            self.last_log_hash = log_hash(
                self.last_log_hash, self.last_id, key, digest, digest=sha256
            )
            ids.append(self.last_id)
            hashes.append(digest)
            log_hashes.append(self.last_log_hash)
        return (
            [str(e.originator_id) for e in events],
            [e.originator_version for e in events],
            [e.topic for e in events],
            [e.state for e in events],
            ids,
            hashes,
            log_hashes,
        )


class _Group:
    """What one group transaction found stored, and what it has admitted since."""

    def __init__(
        self,
        stored_keys: set[_Key],
        positions: dict[str, int],
        leases: dict[int, tuple[str, int]] | None = None,
    ) -> None:
        # The fenced partitions' (owner, token), read (and locked FOR SHARE)
        # inside this transaction.
        self.leases = leases or {}
        # Invariant: every (stream, version) stored, or admitted into this group.
        self.taken = stored_keys
        # Invariant: per application, the tracking position recorded or admitted.
        self.positions = positions
        self.events: list[StoredEvent] = []
        self.trackings: list[Tracking] = []

    def admit(self, append: _Append) -> range:
        """Check one append against the group, then take it; return the places
        of its events in the group's insert. A refused append takes nothing."""
        keys = [_key(e) for e in append.events]
        fence = append.fence
        if fence is not None:
            owner, token = self.leases.get(fence.partition, (None, 0))
            if token != fence.token:
                stream = keys[0][0] if keys else "-"
                raise FencedOutError(stream, fence.partition, fence.token, token, owner)
        for key in keys:
            if key in self.taken:
                raise EventConflictError(
                    *key,
                    "the stream already has this version (another writer stored "
                    "it, or is storing it in the same transaction)",
                )
        if len(set(keys)) != len(keys):
            twice = next(k for k in keys if keys.count(k) > 1)
            raise EventConflictError(*twice, "the batch holds it twice")
        if append.tracking is not None:
            self._admit_tracking(append.tracking)
        self.taken.update(keys)
        start = len(self.events)
        self.events.extend(append.events)
        return range(start, len(self.events))

    def _admit_tracking(self, tracking: Tracking) -> None:
        current = self.positions.get(tracking.application_name)
        if current is not None and tracking.notification_id <= current:
            raise TrackingConflictError(
                tracking.application_name, tracking.notification_id, current
            )
        self.positions[tracking.application_name] = tracking.notification_id
        self.trackings.append(tracking)


class BulkStreams:
    """``select_streams`` on a PostgreSQL recorder (as the LMDB recorders have
    it): many streams' events in one query, for opening a journal of many
    unfinished runs. Mixed into a recorder of the library."""

    datastore: PostgresDatastore
    events_table_name: str

    def select_streams(
        self,
        originator_ids: Iterable[UUID | str],
        *,
        last_only: bool = False,
        gt: Mapping[UUID | str, int] | None = None,
    ) -> dict[UUID | str, list[StoredEvent]]:
        """Every event of each stream (after version ``gt[id]``, if given; or
        its last only), oldest first; a stream with no events maps to []."""
        ids = list(originator_ids)
        found: dict[UUID | str, list[StoredEvent]] = {i: [] for i in ids}
        if not ids:
            return found
        after = [-1 if gt is None else gt.get(i, -1) for i in ids]
        by_text = {str(i): i for i in ids}
        names = {
            "schema": Identifier(self.datastore.schema),
            "table": Identifier(self.events_table_name),
        }
        if last_only:
            statement = SQL(
                "SELECT DISTINCT ON (e.originator_id) e.* "
                "FROM unnest(%s::text[], %s::bigint[]) AS w(id, after) "
                "JOIN {schema}.{table} e ON e.originator_id = w.id "
                "AND e.originator_version > w.after "
                "ORDER BY e.originator_id, e.originator_version DESC"
            ).format(**names)
        else:
            statement = SQL(
                "SELECT e.* FROM unnest(%s::text[], %s::bigint[]) AS w(id, after) "
                "JOIN {schema}.{table} e ON e.originator_id = w.id "
                "AND e.originator_version > w.after "
                "ORDER BY e.originator_id, e.originator_version"
            ).format(**names)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, ([str(i) for i in ids], after))
            for row in curs.fetchall():
                found[by_text[row["originator_id"]]].append(
                    StoredEvent(
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                )
        return found


class PostgresSnapshotRecorder(BulkStreams, PostgresAggregateRecorder):
    """The library's aggregate recorder (snapshots), with ``select_streams``;
    each row chained by ``hash`` to its stream's previous one, as the LMDB
    journal's snapshot tables are (SHA-256 of the bytes ``journal._chain``
    hashes, at position 0: snapshots have none), for ``verify``."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        names = {
            "schema": Identifier(self.datastore.schema),
            "table": Identifier(self.events_table_name),
            "id_type": Identifier(self.datastore.originator_id_type),
        }
        self.sql_create_statements[self.create_table_statement_index] = SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
            "originator_id {id_type} NOT NULL, "
            "originator_version bigint NOT NULL, "
            "topic text, "
            "state bytea, "
            "hash bytea NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))"
        ).format(**names)
        # One row: its hash covers the stream's previous row's (read in the
        # same statement), so rows of one batch go one statement each.
        self.insert_chained_statement = SQL(
            "INSERT INTO {schema}.{table} "
            "(originator_id, originator_version, topic, state, hash) "
            "SELECT %(id)s, %(version)s, %(topic)s, %(state)s, "
            "sha256(coalesce((SELECT p.hash FROM {schema}.{table} p "
            "WHERE p.originator_id = %(id)s AND p.originator_version < %(version)s "
            "ORDER BY p.originator_version DESC LIMIT 1), %(zero)s) "
            "|| %(key)s || %(position)s || %(topic_bytes)s || %(state)s)"
        ).format(**names)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        with curs.connection.transaction():  # the library's connection autocommits
            for event in stored_events:
                stream, version = _key(event)
                curs.execute(
                    self.insert_chained_statement,
                    {
                        "id": event.originator_id,
                        "version": version,
                        "topic": event.topic,
                        "state": event.state,
                        "zero": ZERO_HASH,
                        "key": text_event_key(stream, version),
                        "position": bytes(8),  # journal._chain: no position
                        "topic_bytes": topic_bytes(event.topic),
                    },
                    prepare=True,
                )


class PostgresJournalRecorder(BulkStreams, PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL application recorder with text stream ids and
    gapless notification ids.

    The datastore must be made with ``originator_id_type="text"`` (the factory in
    ``journal.postgres`` does so unless told otherwise).
    """

    commits_in_flight = 2  # groups committing at once (see journal._groupcommit)

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        group_commit: bool = True,
    ) -> None:
        """``group_commit=False`` commits each append in a transaction of its own,
        as the library does."""
        _require_text_ids(datastore)
        super().__init__(datastore, events_table_name=events_table_name)
        self.group_commit = group_commit
        # A group takes a server round trip: wake its members at once.
        self._committer = GroupCommitter(
            self._run_group, chain=False, in_flight=self.commits_in_flight
        )
        names = {
            "schema": Identifier(self.datastore.schema),
            "table": Identifier(self.events_table_name),
            "heads": Identifier(HEADS_TABLE),
            "leases": Identifier(LEASES_TABLE),
        }
        # No bigserial: the id is assigned under the table lock, with the hashes.
        self.sql_create_statements[self.create_table_statement_index] = SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
            "originator_id text NOT NULL, "
            "originator_version bigint NOT NULL, "
            "topic text, "
            "state bytea, "
            "notification_id bigint NOT NULL, "
            "hash bytea NOT NULL, "
            "log_hash bytea NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))"
        ).format(**names)
        # The library's database function inserts without the table lock and
        # relies on the sequence; this recorder never calls it, so never creates it.
        del self.sql_create_statements[self.create_insert_function_statement_index]
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{heads} ("
                "events_table text PRIMARY KEY, "
                "notification_id bigint NOT NULL, "
                "log_hash bytea NOT NULL)"
            ).format(**names)
        )
        self.select_log_head_statement = SQL(
            "SELECT notification_id, log_hash FROM {schema}.{table} "
            "ORDER BY notification_id DESC LIMIT 1"
        ).format(**names)
        # Per stream, the hash of its last event before the first version linked.
        self.select_stream_heads_statement = SQL(
            "SELECT w.originator_id, h.hash "
            "FROM unnest(%s::text[], %s::bigint[]) AS w(originator_id, before) "
            "CROSS JOIN LATERAL (SELECT e.hash FROM {schema}.{table} e "
            "WHERE e.originator_id = w.originator_id "
            "AND e.originator_version < w.before "
            "ORDER BY e.originator_version DESC LIMIT 1) h"
        ).format(**names)
        # Columns as arrays of plain types, which psycopg sends far faster than
        # an array of the composite type.
        self.insert_chained_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, "
            "topic, state, notification_id, hash, log_hash) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], "
            "%s::bytea[], %s::bigint[], %s::bytea[], %s::bytea[]) "
            "RETURNING notification_id"
        ).format(**names)
        self.upsert_head_statement = SQL(
            "INSERT INTO {schema}.{heads} (events_table, notification_id, log_hash) "
            "VALUES (%s, %s, %s) ON CONFLICT (events_table) DO UPDATE SET "
            "notification_id = EXCLUDED.notification_id, log_hash = EXCLUDED.log_hash"
        ).format(**names)
        self.sql_create_statements.append(
            append_function(
                self.datastore.schema,
                self.events_table_name,
                HEADS_TABLE,
                LEASES_TABLE,
                self.channel_name,
            )
        )
        self.append_call = AppendCall(self.datastore.schema, self.events_table_name)
        self.select_stored_keys_statement = SQL(
            "SELECT originator_id, originator_version FROM {schema}.{table} "
            "JOIN unnest(%s::text[], %s::bigint[]) "
            "AS k(originator_id, originator_version) "
            "USING (originator_id, originator_version)"
        ).format(**names)
        self.select_leases_statement = SQL(
            "SELECT partition, owner, token FROM {schema}.{leases} "
            "WHERE partition = ANY(%s) FOR SHARE"
        ).format(**names)

    def create_table(self) -> None:
        create_schema(self.datastore)
        super().create_table()

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        # Hosts opening a journal at once would otherwise replace the append
        # function at once: "tuple concurrently updated".
        curs.execute(
            SQL("SELECT pg_advisory_xact_lock({})").format(Literal(CREATE_LOCK))
        )
        super()._create_table(curs)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.datastore.enable_db_functions:
            raise JournalConfigError(
                "POSTGRES_ENABLE_DB_FUNCTIONS",
                True,
                "chronik's PostgreSQL recorder assigns gapless notification ids "
                "under a table lock the library's database function does not "
                "take; unset it",
            )
        append = self._append_of(stored_events, kwargs)
        if append is None:
            return self._insert_alone(stored_events, **kwargs)
        if not append.events and append.tracking is None:
            return None
        ids: Sequence[int] | None = self._committer.submit(cast(Write, append))
        return ids

    def commit_stats(self) -> CommitStats:
        """How this recorder's appends were grouped into transactions so far."""
        return self._committer.stats()

    def _append_of(
        self, stored_events: Sequence[StoredEvent], kwargs: dict[str, Any]
    ) -> _Append | None:
        """The append to group-commit, or None to commit it alone."""
        fence: Fence | None = kwargs.get("fence")
        if fence is not None:  # a stream's first event (its creation) needs none
            check_covered(
                fence,
                (s.originator_id for s in stored_events if s.originator_version > 1),
            )
            return _Append(tuple(stored_events), None, fence)
        if not self.group_commit:
            return None
        return _Append(tuple(stored_events), None)

    def _insert_alone(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        try:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        except IntegrityError as error:
            conflict = _conflict(error)
            if conflict is None:
                raise
            raise conflict from error
        return ids

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        """An append committed alone, in the library's transaction: lock, link
        the events into both chains, insert (the library reads the ids)."""
        self._lock_table(curs)
        self._notify_channel(curs)
        heads = self._send_heads(curs.connection, stored_events)
        self._insert_chained(curs, stored_events, self._chain(*heads))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _run_group(self, writes: list[Write]) -> list[_Outcome]:
        """One transaction for the group: a call of the table's append function
        (``journal._pg_append``), which locks, checks each append, links and
        inserts the admitted ones, notifies and commits. Raises if the
        transaction fails whole."""
        appends = [cast(_Append, write) for write in writes]
        shape = [(append.events, append.fence) for append in appends]
        with self.datastore.get_connection() as conn:
            return self.append_call.run(conn, shape)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _run_group_pipelined(self, writes: list[Write]) -> list[_Outcome]:
        """The same from Python, with tracking positions (process recorders):
        lock, check each append, insert the admitted ones, notify, commit.

        Two round trips: the lock with every query the checks and the chains
        need, then the notify, the inserts and the commit."""
        appends = [cast(_Append, write) for write in writes]
        events = [e for append in appends for e in append.events]
        failure: Exception | None = None
        with self.datastore.get_connection() as conn:
            with conn.pipeline(), conn.transaction(), conn.cursor() as curs:
                try:
                    self._lock_table(curs)
                    keys = self._send_stored_keys(conn, events)
                    leases = self._send_leases(conn, appends)
                    positions = self._send_positions(conn, appends)
                    heads = self._send_heads(conn, events)
                    group = _Group(
                        _stored_keys(keys),
                        _positions(positions),
                        _leases(leases),
                    )
                    outcomes = [run_checked(write, group) for write in writes]
                    chain = self._chain(*heads)
                    if group.events:
                        self._notify_channel(curs)
                    ids = self._insert_chained(curs, group.events, chain)
                    self._insert_trackings(curs, group.trackings)
                except Exception as error:
                    # Nothing of a failed group may commit (some failures are
                    # raised here, not by the server); re-raised after the
                    # pipeline has ended, as psycopg warns otherwise.
                    failure = error
                    raise Rollback from None
            if failure is not None:
                raise failure
        return [
            (([ids[i] for i in places] or None) if error is None else None, error)
            for places, error in outcomes
        ]

    def _send_stored_keys(
        self, conn: Any, events: Sequence[StoredEvent]
    ) -> _Pending | None:
        """Which of the events' (stream, version) pairs are stored already."""
        if not events:
            return None
        ids, versions = zip(*(_key(e) for e in events), strict=True)
        return _Pending(
            conn, self.select_stored_keys_statement, (list(ids), list(versions))
        )

    def _send_leases(self, conn: Any, appends: list[_Append]) -> _Pending | None:
        """The (owner, token) of each partition the appends' fences name,
        locked FOR SHARE until this transaction ends (a host taking one over
        waits for it)."""
        partitions = sorted({a.fence.partition for a in appends if a.fence})
        if not partitions:
            return None
        return _Pending(conn, self.select_leases_statement, (partitions,))

    def _send_positions(self, conn: Any, appends: list[_Append]) -> _Pending | None:
        """The recorded tracking positions of the appends' applications
        (process recorders)."""
        return None

    def _send_heads(
        self, conn: Any, events: Sequence[StoredEvent]
    ) -> tuple[_Pending, _Pending | None]:
        """The log's last position and hash, and each stream's hash before the
        first of its versions in ``events``. Only under the table lock are
        they the heads the insert links to."""
        before: dict[str, int] = {}
        for event in events:
            stream, version = _key(event)
            before[stream] = min(before.get(stream, version), version)
        log = _Pending(conn, self.select_log_head_statement, ())
        if not before:
            return log, None
        streams = _Pending(
            conn,
            self.select_stream_heads_statement,
            (list(before), list(before.values())),
        )
        return log, streams

    @staticmethod
    def _chain(log: _Pending, streams: _Pending | None) -> _Chain:
        return _Chain(log.rows(), [] if streams is None else streams.rows())

    def _insert_chained(
        self, curs: Cursor[DictRow], events: Sequence[StoredEvent], chain: _Chain
    ) -> list[int]:
        """Insert ``events`` with one statement, linked after the chain's heads,
        and record the new head; their notification ids, in order. The insert
        is the last statement on ``curs`` (the library fetches its ids)."""
        if not events:
            return []
        columns = chain.link(events)
        curs.execute(
            self.upsert_head_statement,
            (self.events_table_name, chain.last_id, chain.last_log_hash),
            prepare=True,
        )
        curs.execute(self.insert_chained_statement, columns, prepare=True)
        ids: list[int] = columns[4]
        return ids

    def _insert_trackings(
        self, curs: Cursor[DictRow], trackings: list[Tracking]
    ) -> None:
        """Record the admitted tracking positions (process recorders)."""


class PostgresJournalProcessRecorder(PostgresProcessRecorder, PostgresJournalRecorder):
    """Events and the tracking position they were caused by, in one transaction."""

    # The MRO puts PostgresJournalRecorder between the tracking recorder and the
    # library's application recorder: its table, insert and create_table apply.

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        super().__init__(
            datastore,
            events_table_name=events_table_name,
            tracking_table_name=tracking_table_name,
        )
        self.select_positions_statement = SQL(
            "SELECT application_name, notification_id FROM {0}.{1} "
            "WHERE application_name = ANY(%s)"
        ).format(
            Identifier(self.datastore.schema), Identifier(self.tracking_table_name)
        )

    def _run_group(self, writes: list[Write]) -> list[_Outcome]:
        # The append function knows no tracking positions.
        found: list[_Outcome] = self._run_group_pipelined(writes)
        return found

    def _append_of(
        self, stored_events: Sequence[StoredEvent], kwargs: dict[str, Any]
    ) -> _Append | None:
        # Legacy multi-row tracking refuses only a repeated position, which the
        # group's check does not model: such appends commit alone.
        if not self.datastore.single_row_tracking:
            return None
        append = super()._append_of(stored_events, kwargs)
        if append is None:
            return None
        return attrs.evolve(append, tracking=kwargs.get("tracking"))

    def _send_positions(self, conn: Any, appends: list[_Append]) -> _Pending | None:
        names = list({a.tracking.application_name for a in appends if a.tracking})
        if not names:
            return None
        return _Pending(conn, self.select_positions_statement, (names,))

    def _insert_trackings(
        self, curs: Cursor[DictRow], trackings: list[Tracking]
    ) -> None:
        # Each was checked against the recorded position, under the events
        # table's lock; one refused now (a writer outside that lock) fails the
        # whole transaction, so nothing of the group is stored.
        for tracking in trackings:
            self._insert_tracking(curs, tracking)


def create_schema(datastore: PostgresDatastore) -> None:
    """Create the datastore's PostgreSQL schema unless it exists."""
    statement = SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(
        Identifier(datastore.schema)
    )
    # Two first opens racing both pass IF NOT EXISTS; the loser's insert into the
    # catalogue fails, and the schema it wanted exists.
    with (
        contextlib.suppress(IntegrityError),
        datastore.transaction(commit=True) as cursor,
    ):
        cursor.execute(statement, prepare=False)


def _stored_keys(pending: _Pending | None) -> set[_Key]:
    if pending is None:
        return set()
    return {(r["originator_id"], r["originator_version"]) for r in pending.rows()}


def _leases(pending: _Pending | None) -> dict[int, tuple[str, int]]:
    if pending is None:
        return {}
    return {
        int(r["partition"]): (str(r["owner"]), int(r["token"])) for r in pending.rows()
    }


def _positions(pending: _Pending | None) -> dict[str, int]:
    if pending is None:
        return {}
    return {r["application_name"]: r["notification_id"] for r in pending.rows()}


def _key(event: StoredEvent) -> _Key:
    return str(event.originator_id), event.originator_version


def _require_text_ids(datastore: PostgresDatastore) -> None:
    if datastore.originator_id_type != "text":
        raise JournalConfigError(
            "ORIGINATOR_ID_TYPE",
            datastore.originator_id_type,
            "chronik's stream ids are strings like 'order-1'; make the "
            "datastore with originator_id_type='text'",
        )


def _conflict(error: IntegrityError) -> EventConflictError | None:
    """An ``EventConflictError`` naming the stream and version the server
    refused, or None when the error's detail does not name them."""
    cause = error.__cause__
    detail = cause.diag.message_detail if isinstance(cause, UniqueViolation) else None
    if not detail or not (
        detail.startswith(_KEY_PREFIX) and detail.endswith(_KEY_SUFFIX)
    ):
        return None
    originator_id, _, version = (
        detail.removeprefix(_KEY_PREFIX).removesuffix(_KEY_SUFFIX).rpartition(", ")
    )
    if not version.isdigit():
        return None
    return EventConflictError(
        originator_id,
        int(version),
        "the stream already has this version (another writer stored it, or the "
        "batch holds it twice)",
    )
