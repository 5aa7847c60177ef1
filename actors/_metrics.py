"""What an actor system has done, counted: runs, steps, timers, signals, replays.

``Metrics`` is the system's thread-safe tally (actors, step workers and callers
all add to it); ``system.stats()`` returns a ``SystemStats`` snapshot of it
together with the journal's commit figures.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Final, Literal, Protocol, get_args, runtime_checkable

import attrs

from journal import CommitStats, Journal, JournalClosedError

__all__ = [
    "COUNTERS",
    "CommitSource",
    "CounterName",
    "Metrics",
    "SystemStats",
    "commit_source_of",
]

CounterName = Literal[
    "runs_started",
    "runs_completed",
    "runs_failed",
    "runs_cancelled",
    "runs_broken_off",
    "activations",
    "replays",
    "events_replayed",
    "step_attempts",
    "steps_completed",
    "step_retries",
    "steps_failed",
    "timers_fired",
    "signals_received",
]
COUNTERS: Final[tuple[CounterName, ...]] = get_args(CounterName)


@runtime_checkable
class CommitSource(Protocol):
    """Where a system's commit figures come from: the LMDB journal (all its
    writers in this process), or the PostgreSQL recorder of the runs."""

    def commit_stats(self) -> CommitStats: ...


class Metrics:
    """Counters, each only ever increased; safe to add to from any thread.
    ``commit_source`` (if given) is where a snapshot's commit figures come from."""

    __slots__ = ("_commits", "_counts", "_lock", "commit_source")

    def __init__(self, commit_source: CommitSource | None = None) -> None:
        self.commit_source = commit_source
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._commits = CommitStats()  # the last read: kept once the journal closes

    def add(self, name: CounterName, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def counts(self) -> dict[str, int]:
        """Every counter, read at one instant."""
        with self._lock:
            return dict(self._counts)

    def commits(self) -> CommitStats:
        if self.commit_source is not None:
            with contextlib.suppress(JournalClosedError):
                self._commits = self.commit_source.commit_stats()
        return self._commits

    def snapshot(
        self,
        *,
        live_runs: int,
        run_restarts: int,
        passivations: int,
        partitions_held: int = 0,
        lease_writes: int = 0,
    ) -> SystemStats:
        return SystemStats(
            **self.counts(),
            live_runs=live_runs,
            run_restarts=run_restarts,
            passivations=passivations,
            partitions_held=partitions_held,
            lease_writes=lease_writes,
            commits=self.commits(),
        )


@attrs.frozen
class SystemStats:
    """A snapshot of an actor system's counters since it opened.

    Runs: ``runs_started`` (by this system: spawned, or started as children),
    ``runs_completed``/``runs_failed``/``runs_cancelled`` (ended in this
    system), ``runs_broken_off`` (their actor stopped on an engine fault past
    the restart budget), ``live_runs`` (with an actor now).
    Actors: ``activations`` (a run's actor started: a new run, a passive run
    woken, a restart), ``replays`` (activations that replayed recorded
    history) and ``events_replayed`` (the history's events, in all),
    ``run_restarts`` (actors replaced by their supervisor after a fault),
    ``passivations`` (runs that gave up their actor while idle).
    Steps: ``step_attempts`` (each execution), ``step_retries`` (attempts that
    failed and were tried again), ``steps_completed`` and ``steps_failed``
    (outcomes recorded; failed = retries spent). ``timers_fired`` (timers and
    receive timeouts), ``signals_received`` (new signals recorded).
    Ownership: ``partitions_held`` (of the journal's 64 partitions of runs,
    those this host drives now), ``lease_writes`` (renewals and takeovers of
    leases: housekeeping, counted in ``commits`` too).
    ``commits``: how the journal's writes in this process were grouped into
    commits (every writer on the journal in this process counts).
    """

    runs_started: int
    runs_completed: int
    runs_failed: int
    runs_cancelled: int
    runs_broken_off: int
    live_runs: int
    activations: int
    replays: int
    events_replayed: int
    run_restarts: int
    passivations: int
    step_attempts: int
    steps_completed: int
    step_retries: int
    steps_failed: int
    timers_fired: int
    signals_received: int
    commits: CommitStats
    partitions_held: int = 0
    lease_writes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON and msgpack can hold it); ``commits`` nested."""
        values = attrs.asdict(self, recurse=False)
        values["commits"] = self.commits.as_dict()
        return values


def commit_source_of(recorder: object) -> CommitSource | None:
    """The LMDB journal behind an eventsourcing recorder, or the recorder itself
    if it keeps commit figures (chronik's PostgreSQL recorder)."""
    journal = getattr(recorder, "journal", None)
    if isinstance(journal, Journal):
        return journal
    return recorder if isinstance(recorder, CommitSource) else None
