"""A running system publishes its stats into the journal (``chronik:stats``;
on PostgreSQL the ``chronik_stats`` table); a read-only reader in any process
reads them back. The tests taking ``journal_location`` run on both backends."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from actors import ActorSystem, ManualClock, SystemStats
from actors._metrics import Metrics
from actors._publisher import StatsPublisher
from journal import (
    Journal,
    JournalClosedError,
    PostgresLocation,
    parse_location,
    publish_stats,
    read_stats,
    remove_stats,
)
from journal._pg_format import check_format
from journal._pg_stats import PostgresStats
from journal._stats import StatsStore
from tests._postgres_server import journal_url
from tests.observability._workflows import known


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _snapshot(metrics: Metrics) -> Callable[[], SystemStats]:
    return lambda: metrics.snapshot(live_runs=0, run_restarts=0, passivations=0)


class _CountingStats(PostgresStats):
    """The PostgreSQL store, counting its writes (as LMDB's commit figures
    count the journal's)."""

    writes = 0

    def publish(self, source_key: str, value: bytes) -> None:
        super().publish(source_key, value)
        self.writes += 1


@attrs.frozen
class Stats:
    """Where a test publishes: ``store``, how many writes it has taken so
    far, and ``reader()``: a second, read-only view of the same journal."""

    store: Journal | StatsStore
    writes: Callable[[], int]
    reader: Callable[[], contextlib.AbstractContextManager[Journal | StatsStore]]


@contextlib.contextmanager
def _postgres_stats(location: PostgresLocation) -> Iterator[PostgresStats]:
    datastore = location.datastore(pool_size=1, max_overflow=0)
    try:
        yield PostgresStats(datastore, location.display)
    finally:
        datastore.close()


@contextlib.contextmanager
def _opened(location: str) -> Iterator[Stats]:
    """The journal at ``location`` (made: LMDB's ``Journal.open``, or a
    PostgreSQL journal's format marker and stats table, as a host's first
    open makes them), ready to publish to."""
    where = parse_location(location)
    if not isinstance(where, PostgresLocation):
        with Journal.open(location) as journal:
            yield Stats(
                journal,
                lambda: journal.commit_stats().writes,
                lambda: Journal.open(location, readonly=True),
            )
        return
    datastore = where.datastore(pool_size=2, max_overflow=0)
    try:
        check_format(datastore, where.display)
        store = _CountingStats(datastore, where.display)
        store.create_table()
        yield Stats(store, lambda: store.writes, lambda: _postgres_stats(where))
    finally:
        datastore.close()


def _published(location: str) -> dict[str, dict[str, Any]]:
    """What the journal at ``location`` holds, read as ``chronik stats`` does."""
    where = parse_location(location)
    if isinstance(where, PostgresLocation):
        with _postgres_stats(where) as store:
            return read_stats(store)
    with Journal.open(location, readonly=True) as reader:  # shares the env here
        return read_stats(reader)


def test_stats_documents_round_trip_and_read_only_readers_see_them(
    journal_location: str,
) -> None:
    with _opened(journal_location) as opened:
        journal = opened.store
        assert read_stats(journal) == {}
        publish_stats(journal, "host/1/t", {"closed": False, "n": [1, 2]})
        publish_stats(journal, "host/1/t", {"closed": True, "n": [3]})
        publish_stats(journal, "host/2/t", {"closed": False})
        assert remove_stats(journal, "host/2/t")
        assert not remove_stats(journal, "host/2/t")
        with pytest.raises(TypeError, match="plain msgpack data"):
            publish_stats(journal, "host/3/t", {"bad": object()})
        with pytest.raises(ValueError, match="1 to 500 bytes"):
            publish_stats(journal, "", {"closed": False})
        with opened.reader() as reader:
            assert read_stats(reader) == {"host/1/t": {"closed": True, "n": [3]}}
    assert _published(journal_location) == {"host/1/t": {"closed": True, "n": [3]}}


def test_a_read_only_journal_without_stats_reads_as_empty(tmp_path: Path) -> None:
    path = str(tmp_path / "journal")
    Journal.open(path).close()
    with Journal.open(path, readonly=True) as reader:
        assert read_stats(reader) == {}


@contextlib.contextmanager
def _postgres_journal(dsn: str) -> Iterator[tuple[PostgresLocation, Any]]:
    """A fresh PostgreSQL journal with only its format marker, and a datastore
    on it (closed at the end)."""
    with journal_url(dsn) as url:
        where = parse_location(url)
        assert isinstance(where, PostgresLocation)
        datastore = where.datastore(pool_size=1, max_overflow=0)
        try:
            check_format(datastore, where.display)
            yield where, datastore
        finally:
            datastore.close()


def test_a_postgres_journal_without_a_stats_table_reads_as_empty_and_gets_none(
    postgres_dsn: str,
) -> None:
    """A journal made before hosts published stats: reading makes nothing."""
    with _postgres_journal(postgres_dsn) as (where, datastore):
        store = PostgresStats(datastore, where.display)
        assert read_stats(store) == {}
        assert not remove_stats(store, "host/1/t")
        with datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s",
                (where.schema,),
            )
            tables = {row["tablename"] for row in cursor.fetchall()}
    assert tables == {"chronik_format"}


def test_a_closed_postgres_store_says_so_and_making_its_table_twice_is_fine(
    postgres_dsn: str,
) -> None:
    with _postgres_journal(postgres_dsn) as (where, datastore):
        store = PostgresStats(datastore, where.display)
        store.create_table()
        store.create_table()
        publish_stats(store, "host/1/t", {"closed": False})
        datastore.close()
        with pytest.raises(JournalClosedError, match="is closed") as raised:
            publish_stats(store, "host/1/t", {"closed": True})
        assert raised.value.path == where.display
        with pytest.raises(JournalClosedError):
            read_stats(store)


def test_a_running_system_publishes_its_counters_and_marks_them_closed(
    journal_location: str, clock: ManualClock
) -> None:
    path = journal_location
    with ActorSystem.open(path, clock=clock) as system:
        ref = system.spawn(known, "a", id="obs-pub-1")
        clock.wait_for_timers(1)
        clock.advance("1h")
        ref.send("go", 2)
        ref.result(timeout=5)

        def published() -> dict[str, Any]:
            documents = list(_published(path).values())
            return documents[0] if documents else {}

        _wait_for(lambda: published().get("stats", {}).get("runs_completed") == 1)
        live = published()
        assert live["closed"] is False
        final = system.stats()
    (key, document), *others = _published(path).items()  # read-only
    assert not others
    assert key.split("/")[:2] == [live["hostname"], str(live["pid"])]
    assert document["closed"] is True
    assert document["updated_at"] >= live["updated_at"]
    counters = final.as_dict()
    commits = counters.pop("commits")
    published = document["stats"]
    assert published.pop("commits")["groups"] >= commits["groups"]  # + closing's
    # Closing left every partition (one more lease write) before the last word.
    assert published.pop("lease_writes") > counters.pop("lease_writes")
    assert (published.pop("partitions_held"), counters.pop("partitions_held")) == (
        0,
        64,
    )
    assert published == counters
    assert document["stats"]["step_retries"] == 1


def test_the_publisher_writes_only_when_the_counters_changed(
    journal_location: str,
) -> None:
    metrics = Metrics()
    with _opened(journal_location) as opened:
        journal = opened.store
        if isinstance(journal, Journal):
            metrics.commit_source = journal
        publisher = StatsPublisher(journal, _snapshot(metrics), period=0.01)
        publisher.start()
        _wait_for(lambda: bool(read_stats(journal)))
        writes = opened.writes()
        time.sleep(0.2)  # some 20 looks with nothing new: no write
        assert opened.writes() == writes
        metrics.add("signals_received")
        _wait_for(lambda: opened.writes() == writes + 1)
        (document,) = read_stats(journal).values()
        assert document["stats"]["signals_received"] == 1
        time.sleep(0.1)
        assert opened.writes() == writes + 1
        publisher.close()
        (document,) = read_stats(journal).values()
    assert document["closed"] is True


def test_lease_renewals_alone_are_no_news_to_a_postgres_publisher(
    postgres_dsn: str,
) -> None:
    """PostgreSQL's commit figures count neither the publisher's writes nor the
    lease writes: a host that only renews its leases publishes once."""
    renewals = iter(range(1, 1_000_000))
    base = Metrics()

    def renewing() -> SystemStats:
        stats = _snapshot(base)()
        return attrs.evolve(stats, lease_writes=next(renewals))

    with journal_url(postgres_dsn) as url, _opened(url) as opened:
        publisher = StatsPublisher(opened.store, renewing, period=0.01)
        publisher.start()
        _wait_for(lambda: opened.writes() == 1)
        time.sleep(0.2)  # some 20 looks, each with one more renewal
        assert opened.writes() == 1
        base.add("timers_fired")
        _wait_for(lambda: opened.writes() == 2)
        publisher.close()
    assert opened.writes() == 3  # and once more at close


def test_a_publisher_that_fails_logs_it_once_and_carries_on(
    journal_location: str, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    failing = threading.Event()
    failing.set()

    def stats() -> SystemStats:
        if failing.is_set():
            raise OSError("disk on fire")
        return _snapshot(metrics)()

    def complaints() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "could not publish" in r.getMessage()]

    caplog.set_level(logging.DEBUG, logger="chronik")
    with _opened(journal_location) as opened:
        journal = opened.store
        publisher = StatsPublisher(journal, stats, period=0.01)
        publisher.start()
        _wait_for(lambda: len(complaints()) >= 3)
        failing.clear()
        _wait_for(lambda: bool(read_stats(journal)))
        publisher.close()
    levels = [r.levelname for r in complaints()]
    assert levels[0] == "WARNING"
    assert set(levels[1:]) == {"DEBUG"}
    assert "disk on fire" in complaints()[0].getMessage()


def test_an_idle_system_writes_no_stats_after_its_first(
    path: str, clock: ManualClock
) -> None:
    with ActorSystem.open(path, clock=clock) as system:
        system.spawn(known, "idle", id="obs-pub-idle")
        clock.wait_for_timers(1)  # waits on its timer from now on
        with Journal.open(path, readonly=True) as shared:
            _wait_for(lambda: bool(read_stats(shared)))
        before = system.stats()
        time.sleep(2.2)  # two publishing periods with nothing new
        after = system.stats()
        # Nothing but lease renewals (housekeeping, counted apart): no stats.
        assert after.lease_writes > before.lease_writes  # renewed meanwhile
        assert (
            after.commits.writes - after.lease_writes
            == before.commits.writes - before.lease_writes
        )
