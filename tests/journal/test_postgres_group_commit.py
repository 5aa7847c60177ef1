"""Group commit in chronik's PostgreSQL recorder: concurrent appends of one process
share a transaction, a conflicting append fails alone, a failed transaction fails
every append of its group.

To put appends in one group deterministically, a test holds the events table's
lock from a connection of its own: the first append leads and waits for the lock,
the others queue behind it and, once the lock is released, form the next group.
Those tests commit one group at a time (``OneGroupAtATime``); the recorder's two
groups at once have a test of their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import ProgrammingError, StoredEvent, Tracking
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Composed, Identifier

from journal import EventConflictError, TrackingConflictError
from journal._postgres import PostgresJournalProcessRecorder, PostgresJournalRecorder
from tests.journal.test_postgres_recorder import (
    drop_schema,
    event,
    fresh_recorder,
    new_schema,
    settings,
    text_datastore,
)

Outcome = Sequence[int] | None | BaseException


class OneGroupAtATime(PostgresJournalRecorder):
    commits_in_flight = 1


class OneProcessGroupAtATime(PostgresJournalProcessRecorder):
    commits_in_flight = 1


@pytest.fixture
def recorder() -> Iterator[PostgresJournalRecorder]:
    with fresh_recorder(OneGroupAtATime) as made:
        yield made


@pytest.fixture
def process_recorder() -> Iterator[PostgresJournalProcessRecorder]:
    with fresh_recorder(OneProcessGroupAtATime) as made:
        yield made


@contextmanager
def datastore_on_new_schema(**options: Any) -> Iterator[PostgresDatastore]:
    """A datastore on a schema of its own (for recorders sharing it), dropped
    afterwards."""
    schema = new_schema()
    datastore = text_datastore(schema, **options)
    try:
        yield datastore
    finally:
        datastore.close()
        drop_schema(schema)


def table(recorder: PostgresJournalRecorder) -> Composed:
    return SQL("{0}.{1}").format(
        Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
    )


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.005)


def queued(recorder: PostgresJournalRecorder) -> int:
    """Appends waiting in the recorder's group committer, plus one for each
    group committing."""
    return recorder._committer.queued()


def lock_waiters(recorder: PostgresJournalRecorder) -> int:
    with psycopg.connect(autocommit=True, **settings()) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks "
            "WHERE NOT granted AND relation = %s::regclass",
            (table(recorder).as_string(conn),),
        ).fetchone()
    assert row is not None
    return int(row[0])


def append_in_one_group(
    recorder: PostgresJournalRecorder, appends: Sequence[Callable[[], Outcome]]
) -> tuple[Outcome, list[Outcome]]:
    """Run a first append, then ``appends`` queued behind it so that they commit
    together in the next group; the first's outcome, and theirs in order."""
    outcomes: list[Outcome] = [None] * (len(appends) + 1)

    def run(index: int, append: Callable[[], Outcome]) -> None:
        try:
            outcomes[index] = append()
        except BaseException as error:
            outcomes[index] = error

    first = lambda: recorder.insert_events([event("first", 1)])  # noqa: E731
    threads = [
        threading.Thread(target=run, args=(i, a))
        for i, a in enumerate([first, *appends])
    ]
    with psycopg.connect(**settings()) as holder:
        holder.execute(SQL("LOCK TABLE {0} IN EXCLUSIVE MODE").format(table(recorder)))
        threads[0].start()
        wait_until(lambda: lock_waiters(recorder) == 1, "the leader waits for the lock")
        for thread in threads[1:]:
            thread.start()
        wait_until(lambda: queued(recorder) == len(threads), "all appends queue")
        holder.commit()
    for thread in threads:
        thread.join()
    return outcomes[0], outcomes[1:]


def appending(
    recorder: PostgresJournalRecorder, *events: StoredEvent, **kwargs: Any
) -> Callable[[], Outcome]:
    return lambda: recorder.insert_events(list(events), **kwargs)


@pytest.mark.parametrize(
    "cls", [PostgresJournalRecorder, OneGroupAtATime], ids=["two-at-once", "one"]
)
def test_64_concurrent_appends_share_transactions_and_get_their_own_gapless_ids(
    cls: type[PostgresJournalRecorder],
) -> None:
    with fresh_recorder(cls) as recorder:
        check_64_concurrent_appends(recorder)


def check_64_concurrent_appends(recorder: PostgresJournalRecorder) -> None:
    streams = [f"order-{i}" for i in range(64)]
    start = threading.Barrier(len(streams))
    ids: dict[str, Sequence[int] | None] = {}

    def append(stream: str) -> None:
        start.wait()
        ids[stream] = recorder.insert_events([event(stream, 1)])

    threads = [threading.Thread(target=append, args=(s,)) for s in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(i for got in ids.values() for i in got or []) == list(range(1, 65))
    notifications = recorder.select_notifications(start=1, limit=100)
    assert {n.originator_id: [n.id] for n in notifications} == ids
    stats = recorder.commit_stats()
    assert stats.writes == 64
    assert stats.groups < 64, stats
    with psycopg.connect(**settings()) as conn:
        row = conn.execute(
            SQL("SELECT count(DISTINCT xmin::text) FROM {0}").format(table(recorder))
        ).fetchone()
    assert row == (stats.groups,)  # the server saw as many writing transactions


def test_two_groups_commit_at_once_and_the_writers_behind_them_share_a_third() -> None:
    """The recorder sends a second group while one commits (the server orders
    them by the table lock); appends arriving while both commit queue and
    share the next group; every id is given once, an append's ids consecutive."""
    with fresh_recorder(PostgresJournalRecorder) as recorder:
        assert recorder.commits_in_flight == 2
        outcomes: dict[str, Outcome] = {}

        def run(stream: str, count: int) -> None:
            events = [event(stream, v) for v in range(1, count + 1)]
            try:
                outcomes[stream] = recorder.insert_events(events)
            except BaseException as error:
                outcomes[stream] = error

        leaders = [threading.Thread(target=run, args=(f"lead-{i}", 1)) for i in (1, 2)]
        queued_behind = [
            threading.Thread(target=run, args=(f"order-{i}", 2)) for i in range(6)
        ]
        with psycopg.connect(**settings()) as holder:
            holder.execute(
                SQL("LOCK TABLE {0} IN EXCLUSIVE MODE").format(table(recorder))
            )
            for count, thread in enumerate(leaders, start=1):
                thread.start()
                wait_until(
                    lambda count=count: lock_waiters(recorder) == count,
                    f"{count} groups wait for the lock",
                )
            for thread in queued_behind:
                thread.start()
            wait_until(lambda: queued(recorder) == 8, "six appends queue behind two")
            assert lock_waiters(recorder) == 2  # the queued ones are not sent
            holder.commit()
        for thread in [*leaders, *queued_behind]:
            thread.join(10)

        ids = [i for got in outcomes.values() for i in got or []]  # type: ignore[union-attr]
        assert sorted(ids) == list(range(1, 15))
        assert sorted(outcomes[f"lead-{i}"] for i in (1, 2)) == [[1], [2]]  # type: ignore[type-var]
        for i in range(6):
            first, second = outcomes[f"order-{i}"]  # type: ignore[misc]
            assert second == first + 1
        stats = recorder.commit_stats()
        assert (stats.groups, stats.writes, stats.max_group) == (3, 8, 6)


def test_queued_appends_commit_in_one_transaction_with_ids_in_queue_order(
    recorder: PostgresJournalRecorder,
) -> None:
    appends = [
        appending(recorder, event(f"order-{i}", 1), event(f"order-{i}", 2))
        for i in range(8)
    ]
    first, outcomes = append_in_one_group(recorder, appends)

    assert first == [1]
    assert sorted(outcomes) == [[2 + 2 * i, 3 + 2 * i] for i in range(8)]  # type: ignore[type-var]
    assert recorder.commit_stats().groups == 2
    assert recorder.commit_stats().max_group == 8
    for ids in outcomes:
        assert isinstance(ids, list)
        streams = {n.originator_id for n in recorder.select_notifications(ids[0], 2)}
        assert len(streams) == 1  # an append's events are consecutive


def test_a_conflicting_append_among_many_fails_alone_and_the_others_commit(
    recorder: PostgresJournalRecorder,
) -> None:
    recorder.insert_events([event("stored", 1)])
    appends = [
        appending(recorder, event("order-1", 1)),
        appending(recorder, event("order-2", 1), event("stored", 1)),
        appending(recorder, event("order-3", 1)),
        appending(recorder, event("twice", 1), event("twice", 1)),
        appending(recorder, event("order-4", 1)),
    ]
    first, outcomes = append_in_one_group(recorder, appends)

    assert first == [2]
    stored, twice = outcomes[1], outcomes[3]
    assert isinstance(stored, EventConflictError)
    assert (stored.originator_id, stored.originator_version) == ("stored", 1)
    assert isinstance(twice, EventConflictError)
    assert "holds it twice" in str(twice)
    assert [outcomes[i] for i in (0, 2, 4)] == [[3], [4], [5]]
    assert recorder.commit_stats().groups == 3
    notifications = recorder.select_notifications(start=1, limit=10)
    assert [(n.id, n.originator_id) for n in notifications] == [
        (1, "stored"),
        (2, "first"),
        (3, "order-1"),
        (4, "order-3"),
        (5, "order-4"),
    ]


def test_two_appends_of_one_version_in_a_group_store_the_first_queued(
    recorder: PostgresJournalRecorder,
) -> None:
    appends = [
        appending(recorder, event("order-1", 1, b"a")),
        appending(recorder, event("order-1", 1, b"b")),
    ]
    _, outcomes = append_in_one_group(recorder, appends)

    refused = [o for o in outcomes if isinstance(o, EventConflictError)]
    stored = recorder.select_events("order-1")
    assert len(refused) == 1, outcomes
    assert len(stored) == 1
    winner = outcomes.index(next(o for o in outcomes if o == [2]))
    assert stored[0].state == [b"a", b"b"][winner]


def test_a_tracking_conflict_fails_its_append_alone(
    process_recorder: PostgresJournalProcessRecorder,
) -> None:
    process_recorder.insert_events([], tracking=Tracking("upstream", 5))
    appends = [
        appending(process_recorder, event("a", 1), tracking=Tracking("upstream", 5)),
        appending(process_recorder, event("b", 1), tracking=Tracking("upstream", 6)),
        appending(process_recorder, event("c", 1), tracking=Tracking("other", 1)),
    ]
    _, outcomes = append_in_one_group(process_recorder, appends)

    refused = outcomes[0]
    assert isinstance(refused, TrackingConflictError)
    assert (refused.notification_id, refused.current) == (5, 5)
    assert outcomes[1:] == [[2], [3]]
    assert process_recorder.max_tracking_id("upstream") == 6
    assert process_recorder.max_tracking_id("other") == 1
    assert process_recorder.select_events("a") == []


def test_a_transaction_the_server_refuses_fails_every_append_of_its_group(
    recorder: PostgresJournalRecorder,
) -> None:
    schema = Identifier(recorder.datastore.schema)
    with psycopg.connect(autocommit=True, **settings()) as conn:
        conn.execute(
            SQL(
                "CREATE FUNCTION {0}.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN IF NEW.originator_id = 'poison' THEN "
                "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$"
            ).format(schema)
        )
        conn.execute(
            SQL(
                "CREATE TRIGGER refuse BEFORE INSERT ON {0} "
                "FOR EACH ROW EXECUTE FUNCTION {1}.refuse()"
            ).format(table(recorder), schema)
        )
    appends = [
        appending(recorder, event("order-1", 1)),
        appending(recorder, event("poison", 1)),
        appending(recorder, event("order-2", 1)),
    ]
    first, outcomes = append_in_one_group(recorder, appends)

    assert first == [1]
    assert all(isinstance(o, ProgrammingError) for o in outcomes), outcomes
    assert "refused by the test" in str(outcomes[0])
    assert recorder.commit_stats().failed_groups == 1
    assert recorder.insert_events([event("order-1", 1)]) == [2]
    notifications = recorder.select_notifications(start=1, limit=10)
    assert [(n.id, n.originator_id) for n in notifications] == [
        (1, "first"),
        (2, "order-1"),
    ]


def test_with_group_commit_off_each_append_commits_alone(
    recorder: PostgresJournalRecorder,
) -> None:
    recorder.group_commit = False
    assert recorder.insert_events([event("order-1", 1)]) == [1]
    with pytest.raises(EventConflictError, match="version 1 of stream order-1"):
        recorder.insert_events([event("order-1", 1)])
    assert recorder.commit_stats().groups == 0


def test_a_failure_after_the_insert_rolls_the_group_back(
    process_recorder: PostgresJournalProcessRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From Python (a process recorder's group, with tracking positions)."""

    def fail(*args: object) -> None:
        raise RuntimeError("failed after the insert")

    monkeypatch.setattr(process_recorder, "_insert_trackings", fail)
    with pytest.raises(RuntimeError, match="failed after the insert"):
        process_recorder.insert_events([event("order-1", 1)])

    assert process_recorder.max_notification_id() is None
    assert process_recorder.commit_stats().failed_groups == 1


def test_a_failure_after_the_insert_rolls_the_function_s_group_back(
    recorder: PostgresJournalRecorder,
) -> None:
    """In the append function: recording the head fails after the insert."""
    heads = SQL("{0}.chronik_heads").format(Identifier(recorder.datastore.schema))
    with recorder.datastore.transaction(commit=True) as curs:
        curs.execute(SQL("DROP TABLE {0}").format(heads))
    with pytest.raises(ProgrammingError, match="chronik_heads"):
        recorder.insert_events([event("order-1", 1)])

    assert recorder.max_notification_id() is None
    assert recorder.commit_stats().failed_groups == 1


def test_hosts_creating_the_tables_at_once_all_succeed() -> None:
    """Each open creates (or replaces) the append function: under one advisory
    lock, or PostgreSQL refuses all but one ("tuple concurrently updated")."""
    schema = new_schema()
    datastores = [text_datastore(schema) for _ in range(6)]
    errors: list[BaseException] = []

    def create(datastore: Any) -> None:
        try:
            PostgresJournalRecorder(datastore).create_table()
        except BaseException as error:
            errors.append(error)

    try:
        PostgresJournalRecorder(datastores[0]).create_table()  # the schema exists
        threads = [
            threading.Thread(target=create, args=(d,))
            for d in datastores
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert PostgresJournalRecorder(datastores[0]).insert_events(
            [event("order-1", 1)]
        ) == [1]
    finally:
        for datastore in datastores:
            datastore.close()
        drop_schema(schema)


def test_every_write_path_links_the_same_hash_chains() -> None:
    """The append function (a group), the library's path (group commit off) and
    a process recorder's group from Python (tracking) all chain each row to the
    previous: one table written by all three verifies whole."""
    from journal._pg_verify import PostgresChecker

    with datastore_on_new_schema() as datastore:
        grouped = PostgresJournalRecorder(datastore, events_table_name="mixed")
        grouped.create_table()
        alone = PostgresJournalRecorder(datastore, events_table_name="mixed")
        alone.group_commit = False
        tracked = PostgresJournalProcessRecorder(datastore, events_table_name="mixed")
        tracked.create_table()
        grouped.insert_events([event("order-1", 1), event("order-2", 1)])
        alone.insert_events([event("order-1", 2)])
        tracked.insert_events([event("order-2", 2)], tracking=Tracking("up", 1))
        grouped.insert_events([event("order-1", 3), event("order-2", 3)])
        checker = PostgresChecker(datastore, "mixed")
        checker.check_log(None)
        checker.check_end()
        for stream in ("order-1", "order-2"):
            checker.check_stream(stream)
        report = checker.report()
        assert report.ok, report.problems
        assert report.max_notification_id == 6


def test_the_call_s_arrays_carry_any_text_and_bytes_back_unchanged(
    recorder: PostgresJournalRecorder,
) -> None:
    """The append function's arrays are built by chronik in PostgreSQL's binary
    format: ids and topics beyond ASCII, empty and long states, NULL bytes and a
    fenced append beside unfenced ones arrive as they were sent."""
    from journal import Fence, Leases, partition_of
    from journal._pg_leases import PostgresLeaseStorage

    storage = PostgresLeaseStorage(recorder.datastore)
    storage.create_tables()
    leases = Leases(storage)
    ids = ["заказ-1", "注文-2", 'quote"and space', "x" * 300]
    states = [b"", b"\x00" * 5000, bytes(range(256)), b"\x81\xa1k\x01"]
    topic = "chronik.tëst:Évent"
    for stream, state in zip(ids, states, strict=True):
        recorder.insert_events([StoredEvent(stream, 1, topic, state)])
    partition = partition_of(ids[0])
    lease = leases.acquire([partition], "host-a", 30.0, time.time())[partition]
    fence = Fence(partition, lease.token)
    recorder.insert_events([StoredEvent(ids[0], 2, topic, b"\x00")], fence=fence)
    for stream, state in zip(ids, states, strict=True):
        stored = recorder.select_events(stream)
        assert [(s.originator_id, s.topic, s.state) for s in stored[:1]] == [
            (stream, topic, state)
        ]
    assert [s.state for s in recorder.select_events(ids[0])] == [states[0], b"\x00"]
    assert recorder.max_notification_id() == 5


def test_appends_go_on_after_a_session_s_prepared_statements_are_dropped() -> None:
    """psycopg drops every prepared statement of a session after a rollback on
    it (``DEALLOCATE ALL``): the append call prepares its own again (three hosts
    in namespaces failed before it did). One session, so the one dropped."""
    with datastore_on_new_schema(pool_size=1, max_overflow=0) as datastore:
        recorder = PostgresJournalRecorder(datastore)
        recorder.create_table()
        recorder.insert_events([event("order-1", 1)])
        with datastore.get_connection() as conn:
            assert conn.execute(
                "SELECT count(*) FROM pg_prepared_statements"
            ).fetchone() == {"count": 1}
            conn.execute("DEALLOCATE ALL")
        assert recorder.insert_events([event("order-1", 2)]) == [2]
        versions = [s.originator_version for s in recorder.select_events("order-1")]
        assert versions == [1, 2]


def test_two_recorders_of_one_table_on_one_pool_share_the_prepared_call() -> None:
    """Recorders of one events table on one datastore prepare the same statement
    on the same sessions: the second uses the first's."""
    with datastore_on_new_schema() as datastore:
        first = PostgresJournalRecorder(datastore, events_table_name="shared")
        first.create_table()
        second = PostgresJournalRecorder(datastore, events_table_name="shared")
        for version in range(1, 6):
            assert first.insert_events([event("order-1", version)]) == [version]
        for version in range(1, 6):
            assert second.insert_events([event("order-2", version)]) == [5 + version]
        assert len(second.select_events("order-1")) == 5
