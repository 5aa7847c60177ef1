"""Crash injection and journal inspection for the contract tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from eventsourcing.persistence import StoredEvent

from actors import ActorSystem, SystemClosedError, UnknownRunError
from aggregates import WorkflowRun
from journal import JournalReader


class InjectedCrash(Exception):
    """The crash a test injects into a commit: the actor that hits it breaks off."""


Batch = list[tuple[str, int, str]]  # (stream, version, event name) of each event


class CommitFault:
    """Wraps ``system._host.commit``, the one commit of each mailbox message (and
    of each spawn). The ``at``-th commit, or the first whose batch satisfies ``when``,
    raises ``InjectedCrash``: before anything of it is durable or, with
    ``after_commit``, right after it is. It crashes once.

    ``attempted`` counts the commits tried; ``committed`` holds the batch of
    each commit that is durable, ``crashed`` the batch of the one that crashed.
    """

    def __init__(
        self,
        system: ActorSystem,
        at: int | None = None,
        *,
        when: Callable[[Batch], bool] | None = None,
        after_commit: bool = False,
    ) -> None:
        self.at = at
        self.when = when
        self.after_commit = after_commit
        self.fired = threading.Event()
        self.attempted = 0
        self.committed: list[Batch] = []
        self.crashed: Batch | None = None
        self._lock = threading.Lock()
        self._save = system._host.commit
        system._host.commit = self._save_or_crash  # type: ignore[method-assign]

    def _save_or_crash(self, run: WorkflowRun, *children: WorkflowRun) -> None:
        batch = [
            (str(e.originator_id), e.originator_version, type(e).__name__)
            for r in (run, *children)
            for e in r.pending_events
        ]
        with self._lock:
            self.attempted += 1
            hit = not self.fired.is_set() and (
                self.attempted == self.at
                or (self.when is not None and self.when(batch))
            )
            if hit:
                self.fired.set()
                self.crashed = batch
        if hit and not self.after_commit:
            raise InjectedCrash(
                f"commit {self.attempted} crashed before it was durable"
            )
        self._save(run, *children)
        with self._lock:
            self.committed.append(batch)
        if hit:
            raise InjectedCrash("a commit crashed after it was durable")


def has_event(name: str, stream: str | None = None) -> Callable[[Batch], bool]:
    """For ``CommitFault(when=)``: the batch holds event ``name`` (of ``stream``)."""

    def check(batch: Batch) -> bool:
        return any(
            event == name and (stream is None or run == stream)
            for run, _, event in batch
        )

    return check


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        time.sleep(0.002)


def wait_until_closing(system: ActorSystem) -> None:
    """Return once ``system.close()``, running on another thread, has begun."""

    def closing() -> bool:
        try:
            system.ref("-")
        except SystemClosedError:
            return True
        except UnknownRunError:
            return False
        return False

    wait_until(closing)
    time.sleep(0.02)  # close() sets its closing flag right after


def last_notification_id(system: ActorSystem) -> int:
    """Where the journal's global log ends: it grows with every write."""
    return system._app.recorder.max_notification_id() or 0


def stored(path: str, workflow_id: str) -> list[StoredEvent]:
    """The run's events as the journal holds them (works while a system is open)."""
    with JournalReader(path) as reader:
        return list(reader.stream(workflow_id))


def event_names(events: list[StoredEvent]) -> list[str]:
    return [event.topic.rpartition(":")[2] for event in events]
