"""The lease table behaves alike on both backends (issue 14): the same
``Leases`` logic over LMDB and over PostgreSQL; on PostgreSQL the fence check
runs inside the append's transaction."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from journal import PARTITIONS, Fence, FencedOutError, Journal, Leases
from tests._postgres_server import connection_settings

TTL = 5.0

psycopg = pytest.importorskip("psycopg")


@contextlib.contextmanager
def _postgres_storage(dsn: str) -> Iterator[Any]:
    from eventsourcing.postgres import PostgresDatastore
    from psycopg.sql import SQL, Identifier

    from journal._pg_leases import PostgresLeaseStorage

    settings = connection_settings(dsn)
    schema = f"chronik_leases_{uuid.uuid4().hex[:10]}"
    datastore = PostgresDatastore(
        schema=schema, pool_size=4, originator_id_type="text", **settings
    )
    storage = PostgresLeaseStorage(datastore)
    storage.create_tables()
    try:
        yield storage, datastore
    finally:
        datastore.close()
        with psycopg.connect(autocommit=True, **settings) as conn:
            conn.execute(SQL("DROP SCHEMA {0} CASCADE").format(Identifier(schema)))


@pytest.fixture(params=["lmdb", "postgres"])
def leases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Leases]:
    if request.param == "lmdb":
        journal = Journal.open(str(tmp_path / "journal"))
        try:
            yield Leases(journal)
        finally:
            journal.close()
        return
    dsn = request.getfixturevalue("postgres_dsn")
    with _postgres_storage(dsn) as (storage, _):
        yield Leases(storage)


def test_leases_are_taken_renewed_released_and_stolen_alike(leases: Leases) -> None:
    taken = leases.acquire([3, 5], "a", TTL, now=100.0)
    assert {p: (x.owner, x.token) for p, x in taken.items()} == {
        3: ("a", 1),
        5: ("a", 2),
    }
    assert leases.acquire([3], "b", TTL, now=101.0) == {}  # held
    renewed = leases.renew("a", TTL, now=103.0)
    assert {p: x.token for p, x in renewed.items()} == {3: 1, 5: 2}
    assert leases.owner_of(3, 104.0) == "a"
    assert sorted(leases.members(104.0)) == ["a", "b"]
    stolen = leases.acquire([3], "b", TTL, now=109.0)  # a's lease ran out
    assert stolen[3].token == 3
    assert leases.renew("a", TTL, now=109.5).keys() == {5}  # 3 is lost
    leases.release([5], "a", now=110.0)
    assert leases.owner_of(5, 110.0) is None
    assert leases.acquire([5], "b", TTL, now=110.0)[5].token == 4
    taken_from_dead = leases.acquire([7], "a", TTL, now=111.0)
    assert leases.acquire([7], "b", TTL, now=111.5, dead=frozenset({"a"}))[7].token == (
        taken_from_dead[7].token + 1
    )
    leases.leave("b", now=112.0)
    assert "b" not in leases.members(112.0)
    assert all(
        lease.expires_at <= 112.0
        for lease in leases.read().values()
        if lease.owner == "b"
    )
    assert leases.last_token() == 6


def test_hosts_racing_for_every_partition_get_each_once(leases: Leases) -> None:
    won: dict[str, dict[int, Any]] = {}

    def race(host: str) -> None:
        won[host] = leases.acquire(range(PARTITIONS), host, TTL, now=100.0)

    threads = [threading.Thread(target=race, args=(h,)) for h in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(w) for w in won.values()) == PARTITIONS
    tokens = [lease.token for w in won.values() for lease in w.values()]
    assert sorted(tokens) == list(range(1, PARTITIONS + 1))


def test_a_fence_check_in_an_append_transaction_refuses_a_stale_owner(
    postgres_dsn: str,
) -> None:
    from journal._pg_leases import check_fence_pg

    with _postgres_storage(postgres_dsn) as (storage, datastore):
        leases = Leases(storage)
        old = leases.acquire([9], "a", TTL, now=100.0)[9]
        with datastore.transaction(commit=False) as cursor:
            check_fence_pg(cursor, datastore.schema, Fence(9, old.token), "run-1")
        new = leases.acquire([9], "b", TTL, now=200.0)[9]
        with (
            datastore.transaction(commit=False) as cursor,
            pytest.raises(FencedOutError) as refused,
        ):
            check_fence_pg(cursor, datastore.schema, Fence(9, old.token), "run-1")
        assert (refused.value.held_token, refused.value.current_token) == (
            old.token,
            new.token,
        )
        assert refused.value.current_owner == "b"
        with (
            datastore.transaction(commit=False) as cursor,
            pytest.raises(FencedOutError),
        ):
            check_fence_pg(
                cursor, datastore.schema, Fence(10, 1), "run-2"
            )  # never held


def test_a_fenced_append_commits_only_while_its_token_holds_and_fails_alone(
    postgres_dsn: str,
) -> None:
    from eventsourcing.persistence import StoredEvent

    from journal import LeaseSettingError, partition_of
    from journal._postgres import PostgresJournalRecorder

    with _postgres_storage(postgres_dsn) as (storage, datastore):
        recorder = PostgresJournalRecorder(datastore)
        recorder.create_table()
        leases = Leases(storage)
        stream = "order-7"
        part = partition_of(stream)
        other = next(f"o-{i}" for i in range(999) if partition_of(f"o-{i}") != part)
        old = leases.acquire([part], "a", TTL, now=100.0)[part]

        def event(version: int, stream_id: str = stream) -> StoredEvent:
            return StoredEvent(stream_id, version, "tests:Event", b"x")

        recorder.insert_events([event(1)])  # a stream's creation needs no fence
        recorder.insert_events([event(2)], fence=Fence(part, old.token))
        with pytest.raises(LeaseSettingError, match="does not cover"):
            recorder.insert_events([event(2, other)], fence=Fence(part, old.token))
        new = leases.acquire([part], "b", TTL, now=200.0)[part]
        results: dict[str, Any] = {}

        def stale() -> None:
            try:
                recorder.insert_events([event(3)], fence=Fence(part, old.token))
            except FencedOutError as error:
                results["stale"] = error

        def current() -> None:
            results["current"] = recorder.insert_events(
                [event(1, other)]
            )  # committed beside it, maybe in the same group

        threads = [threading.Thread(target=f) for f in (stale, current)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        refused = results["stale"]
        assert (refused.held_token, refused.current_token) == (old.token, new.token)
        assert refused.current_owner == "b"
        assert results["current"]
        versions = [e.originator_version for e in recorder.select_events(stream)]
        assert versions == [1, 2]  # the stale write left nothing
        recorder.insert_events([event(3)], fence=Fence(part, new.token))
        assert [e.originator_version for e in recorder.select_events(stream)] == [
            1,
            2,
            3,
        ]


def test_a_fenced_append_behind_its_stream_s_last_version_is_refused_naming_it(
    postgres_dsn: str,
) -> None:
    """The runtime's appends extend their streams, as on LMDB: a version at or
    below the stream's last is refused whole, named with the version held."""
    from eventsourcing.persistence import StoredEvent

    from journal import EventConflictError, partition_of
    from journal._postgres import PostgresJournalRecorder

    with _postgres_storage(postgres_dsn) as (storage, datastore):
        recorder = PostgresJournalRecorder(datastore)
        recorder.create_table()
        stream = "order-8"
        part = partition_of(stream)
        lease = Leases(storage).acquire([part], "a", TTL, now=100.0)[part]

        def event(version: int) -> StoredEvent:
            return StoredEvent(stream, version, "tests:Event", b"x")

        recorder.insert_events([event(1)])
        recorder.insert_events([event(3)])  # another writer, unfenced, ahead
        with pytest.raises(EventConflictError) as behind:
            recorder.insert_events(
                [event(2), event(3), event(4)], fence=Fence(part, lease.token)
            )
        assert behind.value.originator_version == 2
        assert "already has version 3" in str(behind.value)
        versions = [e.originator_version for e in recorder.select_events(stream)]
        assert versions == [1, 3]
        recorder.insert_events([event(4)], fence=Fence(part, lease.token))
        assert recorder.select_events(stream)[-1].originator_version == 4
