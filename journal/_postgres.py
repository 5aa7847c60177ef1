"""chronik's application recorder on PostgreSQL, a subclass of eventsourcing's.

It keeps the library's table layout and its serialisation of appends (``LOCK TABLE
... IN EXCLUSIVE MODE``, so notification ids are issued in commit order) and changes
three things:

- stream ids are ``text``: chronik's run ids are strings like ``"order-1"``;
- notification ids are assigned from the table's last id inside the locked insert,
  not from a sequence, so a refused append leaves no hole: ids are gapless, as in
  the LMDB journal (a sequence's ``nextval`` is not rolled back);
- ``create_table()`` also creates the PostgreSQL schema it names.

State stays ``bytea``: whatever the transcoder made (msgpack, for chronik).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresProcessRecorder,
)
from psycopg.errors import UniqueViolation
from psycopg.sql import SQL, Identifier

from journal._errors import EventConflictError, JournalConfigError

__all__ = [
    "PostgresJournalProcessRecorder",
    "PostgresJournalRecorder",
    "create_schema",
]

# What a unique violation on the events table's primary key says, after "Key ".
_KEY_PREFIX = "Key (originator_id, originator_version)=("
_KEY_SUFFIX = ") already exists."


class PostgresJournalRecorder(PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL application recorder with text stream ids and
    gapless notification ids.

    The datastore must be made with ``originator_id_type="text"`` (the factory in
    ``journal.postgres`` does so unless told otherwise).
    """

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
    ) -> None:
        _require_text_ids(datastore)
        super().__init__(datastore, events_table_name=events_table_name)
        names = {
            "schema": Identifier(self.datastore.schema),
            "table": Identifier(self.events_table_name),
            "event": Identifier(self.stored_event_type_name),
        }
        # No bigserial: the id is assigned in the insert below, under the lock.
        self.sql_create_statements[self.create_table_statement_index] = SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
            "originator_id text NOT NULL, "
            "originator_version bigint NOT NULL, "
            "topic text, "
            "state bytea, "
            "notification_id bigint NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))"
        ).format(**names)
        # The library's database function inserts without the table lock and
        # relies on the sequence; this recorder never calls it, so never creates it.
        del self.sql_create_statements[self.create_insert_function_statement_index]
        # Invariant: runs only after _lock_table in the same transaction, so the
        # scalar subquery (evaluated once, before any row is inserted) sees every
        # committed id and no other writer can commit until this one has.
        self.insert_events_statement = SQL(
            "INSERT INTO {schema}.{table} "
            "(originator_id, originator_version, topic, state, notification_id) "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state, "
            "(SELECT COALESCE(MAX(notification_id), 0) FROM {schema}.{table}) "
            "+ e.ordinal "
            "FROM unnest(%s::{schema}.{event}[]) WITH ORDINALITY "
            "AS e(originator_id, originator_version, topic, state, ordinal) "
            "ORDER BY e.ordinal "
            "RETURNING notification_id"
        ).format(**names)

    def create_table(self) -> None:
        create_schema(self.datastore)
        super().create_table()

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
        try:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        except IntegrityError as error:
            conflict = _conflict(error)
            if conflict is None:
                raise
            raise conflict from error
        return ids


class PostgresJournalProcessRecorder(PostgresProcessRecorder, PostgresJournalRecorder):
    """Events and the tracking position they were caused by, in one transaction."""

    # The MRO puts PostgresJournalRecorder between the tracking recorder and the
    # library's application recorder: its table, insert and create_table apply.


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
