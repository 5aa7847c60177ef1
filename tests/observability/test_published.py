"""A running system publishes its stats into the journal (``chronik:stats``);
a read-only reader in any process reads them back."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors import ActorSystem, ManualClock, SystemStats
from actors._metrics import Metrics
from actors._publisher import StatsPublisher
from journal import Journal, publish_stats, read_stats, remove_stats
from tests.observability._workflows import known


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _snapshot(metrics: Metrics) -> Callable[[], SystemStats]:
    return lambda: metrics.snapshot(live_runs=0, run_restarts=0, passivations=0)


def test_stats_documents_round_trip_and_read_only_readers_see_them(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "journal")
    with Journal.open(path) as journal:
        assert read_stats(journal) == {}
        publish_stats(journal, "host/1/t", {"closed": False, "n": [1, 2]})
        publish_stats(journal, "host/1/t", {"closed": True, "n": [3]})
        publish_stats(journal, "host/2/t", {"closed": False})
        assert remove_stats(journal, "host/2/t")
        with pytest.raises(TypeError, match="plain msgpack data"):
            publish_stats(journal, "host/3/t", {"bad": object()})
    with Journal.open(path, readonly=True) as reader:
        assert read_stats(reader) == {"host/1/t": {"closed": True, "n": [3]}}


def test_a_read_only_journal_without_stats_reads_as_empty(tmp_path: Path) -> None:
    path = str(tmp_path / "journal")
    Journal.open(path).close()
    with Journal.open(path, readonly=True) as reader:
        assert read_stats(reader) == {}


def test_a_running_system_publishes_its_counters_and_marks_them_closed(
    path: str, clock: ManualClock
) -> None:
    with ActorSystem.open(path, clock=clock) as system:
        ref = system.spawn(known, "a", id="obs-pub-1")
        clock.wait_for_timers(1)
        clock.advance("1h")
        ref.send("go", 2)
        ref.result(timeout=5)
        with Journal.open(path, readonly=True) as shared:  # shares the env here

            def published() -> dict[str, Any]:
                documents = list(read_stats(shared).values())
                return documents[0] if documents else {}

            _wait_for(lambda: published().get("stats", {}).get("runs_completed") == 1)
            live = published()
        assert live["closed"] is False
        final = system.stats()
    with Journal.open(path, readonly=True) as reader:  # a read-only environment
        (key, document), *others = read_stats(reader).items()
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


def test_the_publisher_writes_only_when_the_counters_changed(tmp_path: Path) -> None:
    metrics = Metrics()
    with Journal.open(str(tmp_path / "journal")) as journal:
        metrics.journal = journal
        publisher = StatsPublisher(journal, _snapshot(metrics), period=0.01)
        publisher.start()
        _wait_for(lambda: bool(read_stats(journal)))
        writes = journal.commit_stats().writes
        time.sleep(0.2)  # some 20 looks with nothing new: no write
        assert journal.commit_stats().writes == writes
        metrics.add("signals_received")
        _wait_for(lambda: journal.commit_stats().writes == writes + 1)
        (document,) = read_stats(journal).values()
        assert document["stats"]["signals_received"] == 1
        time.sleep(0.1)
        assert journal.commit_stats().writes == writes + 1
        publisher.close()
        (document,) = read_stats(journal).values()
    assert document["closed"] is True


def test_a_publisher_that_fails_logs_it_once_and_carries_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
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
    with Journal.open(str(tmp_path / "journal")) as journal:
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
