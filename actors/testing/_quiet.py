"""``Quiescence``: the work a system still has in hand, seen from its commits.

Time may skip to the next timer only when no run has anything else to do: no
step running, no fired timer whose outcome is not yet recorded, no run just
started whose actor has not yet acted. Each of these ends in a commit (or a
step handed to the pool), so watching the commits tells when they are done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from aggregates import (
    ChildFinished,
    ReceiveTimedOut,
    RunEvent,
    SignalConsumed,
    Started,
    StepCompleted,
    StepFailed,
    StepScheduled,
    TimerFired,
)

__all__ = ["Quiescence"]

Key = tuple[str, int]  # (workflow id, seq)


class Quiescence:
    """Which runs still have work in hand; ``changes`` counts every update."""

    def __init__(self, patience: float = 1.0) -> None:
        # A fired timer whose outcome never comes (a fire the run ignored) is
        # given up after ``patience`` seconds without any other change.
        self._patience = patience
        self._condition = threading.Condition()
        # Invariant: each set holds exactly the work announced and not yet seen
        # ending (a run that ended or broke off is dropped by ``busy``).
        self._steps: set[Key] = set()  # handed to the pool, outcome not recorded
        self._fires: set[Key] = set()  # fired timers, outcome not recorded
        self._starting: set[str] = set()  # started runs whose actor has not acted
        self._children: set[tuple[str, str]] = set()  # (parent, child that ended)
        self._changed_at = time.monotonic()
        self.changes = 0

    def submitted(self, workflow_id: str, seq: int) -> None:
        with self._condition:
            self._steps.add((workflow_id, seq))
            self._starting.discard(workflow_id)
            self._bump()

    def committed(self, events: Iterable[RunEvent]) -> None:
        with self._condition:
            for event in events:
                self._apply(event)
            self._bump()

    def child_ended(self, parent_id: str, child_id: str) -> None:
        """The parent is told: it records the child's outcome if it awaits it."""
        with self._condition:
            self._children.add((parent_id, child_id))
            self._bump()

    def expect_fires(self, keys: Iterable[Key]) -> None:
        with self._condition:
            self._fires.update(keys)
            self._bump()

    def busy(
        self,
        settled: Callable[[str], bool],
        awaits_child: Callable[[str, str], bool],
    ) -> list[str]:
        """What is still in hand (empty when quiet), without runs that ended
        and children whose parent no longer awaits them."""
        with self._condition:
            children = set(self._children)
        done = {pair for pair in children if not awaits_child(*pair)}
        with self._condition:
            self._children -= done
            work = [
                *((w, f"step {w}/{s} running") for w, s in sorted(self._steps)),
                *((w, f"timer {w}/{s} fired") for w, s in sorted(self._fires)),
                *((w, f"run {w} starting") for w in sorted(self._starting)),
                *((p, f"run {p} told {c} ended") for p, c in sorted(self._children)),
            ]
        ended = {run for run in {w for w, _ in work} if settled(run)}
        if ended:
            with self._condition:
                self._steps = {k for k in self._steps if k[0] not in ended}
                self._fires = {k for k in self._fires if k[0] not in ended}
                self._starting -= ended
                self._children = {k for k in self._children if k[0] not in ended}
        left = [line for run, line in work if run not in ended]
        return self._without_stale_fires(left)

    def wait_for_change(self, seen: int, timeout: float) -> None:
        """Return when ``changes`` differs from ``seen``, or after ``timeout``."""
        with self._condition:
            self._condition.wait_for(lambda: self.changes != seen, timeout)

    def _without_stale_fires(self, work: list[str]) -> list[str]:
        with self._condition:
            if self._steps or self._starting or self._children or not self._fires:
                return work
            if time.monotonic() - self._changed_at < self._patience:
                return work
            self._fires.clear()  # ignored by their runs: nothing will come
            return []

    def _apply(self, event: RunEvent) -> None:
        run = str(event.originator_id)
        self._starting.discard(run)
        if isinstance(event, Started):
            self._starting.add(run)
        elif isinstance(event, StepScheduled):
            self._steps.add((run, event.seq))
        elif isinstance(event, StepCompleted) or (
            isinstance(event, StepFailed) and event.final
        ):
            self._steps.discard((run, event.seq))
        elif isinstance(event, TimerFired | ReceiveTimedOut | SignalConsumed):
            self._fires.discard((run, event.seq))
        elif isinstance(event, ChildFinished):
            self._children = {k for k in self._children if k[0] != run}

    def _bump(self) -> None:
        self.changes += 1
        self._changed_at = time.monotonic()
        self._condition.notify_all()
