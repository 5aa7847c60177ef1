"""``system.stats()`` counts exactly what a known workload did; the journal's
group committer counts its commits and their sizes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from actors import ActorSystem, ManualClock, SystemStats, WorkflowFailedError
from journal import CommitStats, Journal, LMDBApplicationRecorder
from journal._store import _Store
from tests.observability._workflows import doomed, known, patient


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_counters_match_what_a_known_workload_did(
    path: str, clock: ManualClock
) -> None:
    with ActorSystem.open(path, clock=clock, idle_timeout=0.05) as system:
        ref = system.spawn(known, "a", id="obs-count-1")
        clock.wait_for_timers(1)
        _wait_for(lambda: system.live_runs == 0)  # passivated on its timer
        clock.advance("1h")  # the timer wakes it: a replay of 7 events
        _wait_for(lambda: system.stats().timers_fired == 1)
        _wait_for(lambda: system.live_runs == 0)  # passivated on its receive
        ref.send("go", 1)  # wakes it again: a replay of 9 events
        assert ref.result(timeout=5) == ["flaky-a", "steady-a", "1"]
        stats = system.stats()
    counters = stats.as_dict()
    commits = counters.pop("commits")
    assert counters.pop("lease_writes") >= 1  # its first lease, at open
    assert counters == {
        "partitions_held": 64,  # the one host: all of them
        "runs_started": 1,
        "runs_completed": 1,
        "runs_failed": 0,
        "runs_cancelled": 0,
        "runs_broken_off": 0,
        "live_runs": 0,
        "activations": 3,
        "replays": 2,
        "events_replayed": 7 + 9,
        "run_restarts": 0,
        "passivations": 2,
        "step_attempts": 3,
        "steps_completed": 2,
        "step_retries": 1,
        "steps_failed": 0,
        "timers_fired": 1,
        "signals_received": 1,
    }
    assert commits["groups"] >= 5  # the spawn, two step outcomes, timer, signal
    json.dumps(stats.as_dict())  # plain data


def test_failed_and_cancelled_runs_and_spent_retries_are_counted_apart(
    system: ActorSystem,
) -> None:
    with pytest.raises(WorkflowFailedError):
        system.spawn(doomed, "b", id="obs-count-doomed").result(timeout=5)
    waiting = system.spawn(patient, id="obs-count-patient")
    waiting.cancel("not needed")
    _wait_for(lambda: waiting.status().value == "cancelled")
    stats = system.stats()
    assert (stats.runs_started, stats.runs_failed, stats.runs_cancelled) == (2, 1, 1)
    assert (stats.step_attempts, stats.step_retries, stats.steps_failed) == (2, 1, 1)
    assert stats.steps_completed == 0
    assert stats.runs_completed == 0


def test_spawn_many_counts_each_new_run_once(system: ActorSystem) -> None:
    refs = system.spawn_many(patient, [(f"obs-many-{i}", ()) for i in range(3)])
    system.spawn_many(patient, [("obs-many-0", ())])  # the same run: not new
    assert system.stats().runs_started == 3
    for ref in refs:
        ref.send("never", "now")
        ref.result(timeout=5)
    assert system.stats().runs_completed == 3


def test_stats_are_a_frozen_snapshot_that_outlives_the_system(path: str) -> None:
    with ActorSystem.open(path) as system:
        before = system.stats()
        system.spawn(patient, id="obs-snap").send("never", 1)
    after = system.stats()  # readable after close, with the last commit figures
    assert isinstance(after, SystemStats)
    assert before.runs_started == 0
    assert after.runs_started == 1
    assert after.commits.groups > before.commits.groups
    with pytest.raises(AttributeError):
        after.runs_started = 5  # type: ignore[misc]


# -- the journal's commit groups ---------------------------------------------------


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each LMDB write transaction committed, in order."""
    sizes: list[int] = []
    run_group_once = _Store._run_group_once

    def recording(self: _Store, writes: list[Any]) -> Any:
        outcomes = run_group_once(self, writes)
        sizes.append(len(writes))
        return outcomes

    monkeypatch.setattr(_Store, "_run_group_once", recording)
    return sizes


def test_commit_stats_add_up_to_the_commits_made(
    tmp_path: Path, commits: list[int]
) -> None:
    threads, per_thread = 16, 25
    with Journal.open(str(tmp_path / "journal")) as journal:
        recorder = LMDBApplicationRecorder(journal)
        start = threading.Barrier(threads)

        def append() -> None:
            stream = uuid4()
            start.wait()
            for version in range(1, per_thread + 1):
                recorder.insert_events([StoredEvent(stream, version, "t", b"")])

        workers = [threading.Thread(target=append) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stats = journal.commit_stats()
    assert stats.groups == len(commits)
    assert stats.writes == sum(commits) == 1 + threads * per_thread  # + the marker
    assert stats.max_group == max(commits)
    assert sum(stats.histogram) == stats.groups
    buckets = [0] * 5
    for size in commits:
        buckets[min(size.bit_length(), 5) - 1] += 1
    assert list(stats.histogram) == buckets
    assert stats.failed_groups == 0
    assert stats.as_dict()["histogram"]["1"] == buckets[0]
    assert stats.mean_group == pytest.approx(stats.writes / stats.groups)


def test_a_lone_writer_commits_each_write_on_its_own(
    tmp_path: Path, commits: list[int]
) -> None:
    with Journal.open(str(tmp_path / "journal")) as journal:
        recorder = LMDBApplicationRecorder(journal)
        stream = uuid4()
        for version in range(1, 11):
            recorder.insert_events([StoredEvent(stream, version, "t", b"")])
        stats = journal.commit_stats()
    assert commits == [1] * 11  # the format marker, then one commit a write
    assert stats == CommitStats(
        groups=11, writes=11, max_group=1, histogram=(11, 0, 0, 0, 0)
    )
