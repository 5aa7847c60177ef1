"""eventsourcing's own recorder suites, and chronik's own checks, against the
PostgreSQL recorder.

The server: ``CHRONIK_PG_DSN`` if set, else 127.0.0.1:5432 as user postgres,
database ``test``; if it does not answer, every test here skips and says why. Each
test gets a schema of its own, named for this run, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

import psycopg
import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    ProcessRecorder,
    StoredEvent,
    TrackingRecorder,
)
from eventsourcing.postgres import (
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
)
from eventsourcing.utils import Environment
from psycopg.sql import SQL, Identifier

from journal import EventConflictError, JournalConfigError, MsgpackTranscoder
from journal._location import connection_settings
from journal._postgres import (
    PostgresJournalProcessRecorder,
    PostgresJournalRecorder,
    PostgresSnapshotRecorder,
)
from journal.postgres import PostgresJournalFactory

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
RUN = uuid.uuid4().hex[:8]


@functools.cache
def server() -> dict[str, Any]:
    """The connection settings of the test server, or a skip saying why not."""
    dsn = os.environ.get("CHRONIK_PG_DSN") or DEFAULT_DSN
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error as error:
        return {"skip": f"no PostgreSQL server at {dsn!r}: {error}".strip()}
    return dict(connection_settings(dsn, dbname="test"))


def settings() -> dict[str, Any]:
    found = server()
    if "skip" in found:
        pytest.skip(found["skip"])
    return found


def new_schema() -> str:
    return f"chronik_test_{RUN}_{uuid.uuid4().hex[:8]}"


def drop_schema(schema: str) -> None:
    with psycopg.connect(autocommit=True, **settings()) as conn:
        conn.execute(
            SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(Identifier(schema))
        )


def text_datastore(schema: str, **options: Any) -> PostgresDatastore:
    options.setdefault("originator_id_type", "text")
    options.setdefault("pool_size", 4)
    return PostgresDatastore(schema=schema, **settings(), **options)


class _OnTemporarySchema:
    """Each test gets a schema of its own, dropped afterwards."""

    def setUp(self) -> None:
        self.schema = new_schema()
        self.datastore = text_datastore(self.schema)
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        self.datastore.close()
        drop_schema(self.schema)

    def new_originator_id(self) -> str:
        return f"order-{uuid.uuid4()}"

    def journal_recorder(self) -> PostgresJournalRecorder:
        recorder = PostgresJournalRecorder(self.datastore)
        recorder.create_table()
        return recorder


class TestJournalRecorder(_OnTemporarySchema, ApplicationRecorderTestCase[Any]):
    def create_recorder(self) -> ApplicationRecorder:
        return self.journal_recorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestJournalProcessRecorder(_OnTemporarySchema, ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        recorder = PostgresJournalProcessRecorder(self.datastore)
        recorder.create_table()
        return recorder


class TestNonInterleavingNotificationIDs(
    _OnTemporarySchema, NonInterleavingNotificationIDsBaseCase
):
    def create_recorder(self) -> ApplicationRecorder:
        return self.journal_recorder()


class _TrackingRecorderSubclass(PostgresTrackingRecorder):
    pass


class TestPostgresJournalFactory(InfrastructureFactoryTestCase[PostgresJournalFactory]):
    def setUp(self) -> None:
        found = settings()
        self.schema = new_schema()
        self.env = Environment(
            "TestCase",
            {
                "PERSISTENCE_MODULE": "journal.postgres",
                "POSTGRES_DBNAME": found["dbname"],
                "POSTGRES_HOST": found["host"],
                "POSTGRES_PORT": found["port"],
                "POSTGRES_USER": found["user"],
                "POSTGRES_PASSWORD": found["password"],
                "POSTGRES_SCHEMA": self.schema,
            },
        )
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        drop_schema(self.schema)

    def expected_factory_class(self) -> type[PostgresJournalFactory]:
        return PostgresJournalFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return PostgresSnapshotRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return PostgresJournalRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return _TrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return PostgresJournalProcessRecorder

    def test_factory_defaults_to_text_ids_and_msgpack(self) -> None:
        assert self.factory.datastore.originator_id_type == "text"
        assert isinstance(self.factory.transcoder(), MsgpackTranscoder)


del ApplicationRecorderTestCase
del ProcessRecorderTestCase
del NonInterleavingNotificationIDsBaseCase
del InfrastructureFactoryTestCase


# chronik's own checks.


_R = TypeVar("_R", bound=PostgresJournalRecorder)


@contextlib.contextmanager
def fresh_recorder(cls: type[_R]) -> Iterator[_R]:
    """A recorder of ``cls`` with its tables made, on a schema of its own
    dropped afterwards."""
    schema = new_schema()
    datastore = text_datastore(schema)
    try:
        made = cls(datastore)
        made.create_table()
        yield made
    finally:
        datastore.close()
        drop_schema(schema)


@pytest.fixture
def recorder() -> Iterator[PostgresJournalRecorder]:
    with fresh_recorder(PostgresJournalRecorder) as made:
        yield made


def event(stream: str, version: int, state: bytes = b"\x81\xa1k\x01") -> StoredEvent:
    return StoredEvent(stream, version, "chronik.test:Event", state)


def test_a_text_stream_id_round_trips(recorder: PostgresJournalRecorder) -> None:
    assert recorder.insert_events([event("order-1", 1), event("order-1", 2)]) == [1, 2]

    stored = recorder.select_events("order-1")
    notifications = recorder.select_notifications(start=1, limit=10)

    assert [(s.originator_id, s.originator_version) for s in stored] == [
        ("order-1", 1),
        ("order-1", 2),
    ]
    assert [n.originator_id for n in notifications] == ["order-1", "order-1"]
    assert stored[0].state == b"\x81\xa1k\x01"


def test_concurrent_appends_of_one_version_store_one_and_refuse_the_other(
    recorder: PostgresJournalRecorder,
) -> None:
    recorder.insert_events([event("order-1", 1)])
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def append(state: bytes) -> None:
        start.wait()
        try:
            outcomes.append(recorder.insert_events([event("order-1", 2, state)]))
        except IntegrityError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=append, args=(s,)) for s in (b"a", b"b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    refused = [o for o in outcomes if isinstance(o, IntegrityError)]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], EventConflictError)
    assert (refused[0].originator_id, refused[0].originator_version) == ("order-1", 2)
    assert [s.originator_version for s in recorder.select_events("order-1")] == [1, 2]


def test_a_refused_append_leaves_no_gap_in_notification_ids(
    recorder: PostgresJournalRecorder,
) -> None:
    recorder.insert_events([event("order-1", 1)])
    with pytest.raises(EventConflictError, match="version 1 of stream order-1"):
        recorder.insert_events([event("order-2", 1), event("order-1", 1)])

    assert recorder.insert_events([event("order-3", 1), event("order-3", 2)]) == [2, 3]
    notifications = recorder.select_notifications(start=None, limit=10)
    assert [(n.id, n.originator_id) for n in notifications] == [
        (1, "order-1"),
        (2, "order-3"),
        (3, "order-3"),
    ]


def test_a_uuid_datastore_is_refused_with_the_setting_to_change() -> None:
    schema = new_schema()
    datastore = text_datastore(schema, originator_id_type="uuid")
    try:
        with pytest.raises(JournalConfigError, match="originator_id_type='text'"):
            PostgresJournalRecorder(datastore)
    finally:
        datastore.close()


def test_the_persistence_module_builds_the_journal_recorder_in_a_new_schema() -> None:
    found = settings()
    schema = new_schema()
    factory = InfrastructureFactory.construct(
        Environment(
            env={
                "PERSISTENCE_MODULE": "journal.postgres",
                "POSTGRES_DBNAME": found["dbname"],
                "POSTGRES_HOST": found["host"],
                "POSTGRES_PORT": found["port"],
                "POSTGRES_USER": found["user"],
                "POSTGRES_PASSWORD": found["password"],
                "POSTGRES_SCHEMA": schema,
            }
        )
    )
    try:
        recorder = factory.application_recorder()
        assert isinstance(recorder, PostgresJournalRecorder)
        assert recorder.insert_events([event("order-1", 1)]) == [1]
        assert recorder.max_notification_id() == 1
    finally:
        factory.close()
        drop_schema(schema)


def test_many_streams_read_in_one_query_from_events_and_snapshots() -> None:
    schema = new_schema()
    datastore = text_datastore(schema)
    try:
        recorder = PostgresJournalRecorder(datastore)
        recorder.create_table()
        snapshots = PostgresSnapshotRecorder(datastore, events_table_name="snaps")
        snapshots.create_table()
        for stream, count in (("a-1", 3), ("b-2", 1)):
            recorder.insert_events(
                [StoredEvent(stream, v, "t", b"x") for v in range(1, count + 1)]
            )
        snapshots.insert_events([StoredEvent("a-1", 2, "s", b"snap")])
        found = recorder.select_streams(["b-2", "a-1", "none"])
        assert {k: [e.originator_version for e in v] for k, v in found.items()} == {
            "b-2": [1],
            "a-1": [1, 2, 3],
            "none": [],
        }
        after = recorder.select_streams(["a-1", "b-2"], gt={"a-1": 2})
        assert [e.originator_version for e in after["a-1"]] == [3]
        assert [e.originator_version for e in after["b-2"]] == [1]
        last = recorder.select_streams(["a-1", "b-2"], last_only=True)
        assert [e.originator_version for e in last["a-1"]] == [3]
        snaps = snapshots.select_streams(["a-1", "b-2"], last_only=True)
        assert [(e.originator_version, e.state) for e in snaps["a-1"]] == [(2, b"snap")]
        assert snaps["b-2"] == []
    finally:
        datastore.close()
        drop_schema(schema)
