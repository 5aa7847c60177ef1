"""``TimerService``: the pending timers of every live run, fired by a clock."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from datetime import datetime

__all__ = ["TimerService"]


class TimerService:
    """Timers are ``(fire_at, workflow_id, seq)``; a due one calls ``on_fire``.

    A timer is never cancelled here: the run ignores a fire for a command that
    already has its outcome (a receive whose signal came first). Adding a timer
    that is pending already (a run replayed again) is a no-op.
    """

    def __init__(
        self, now: Callable[[], datetime], on_fire: Callable[[str, int], None]
    ) -> None:
        self._now = now
        self._on_fire = on_fire
        self._condition = threading.Condition()
        # Invariant: a heap ordered by fire time.
        self._heap: list[tuple[datetime, str, int]] = []
        self._keys: set[tuple[str, int, datetime]] = set()  # what the heap holds

    @property
    def pending(self) -> int:
        with self._condition:
            return len(self._heap)

    def next_due(self) -> datetime | None:
        """When the first pending timer falls due, or ``None`` if none is pending."""
        with self._condition:
            return self._heap[0][0] if self._heap else None

    def pending_timers(self) -> list[tuple[datetime, str, int]]:
        """Every pending ``(fire_at, workflow_id, seq)``, the first due first.

        A timer whose command has already ended (a receive whose signal came
        first) stays pending until it falls due, and its fire is then ignored.
        """
        with self._condition:
            return sorted(self._heap)

    def add(self, workflow_id: str, seq: int, fire_at: datetime) -> None:
        with self._condition:
            if (workflow_id, seq, fire_at) in self._keys:
                return
            self._keys.add((workflow_id, seq, fire_at))
            heapq.heappush(self._heap, (fire_at, workflow_id, seq))
            self._condition.notify_all()
        if fire_at <= self._now():
            self.fire_due()

    def fire_due(self) -> None:
        now = self._now()
        due: list[tuple[datetime, str, int]] = []
        with self._condition:
            while self._heap and self._heap[0][0] <= now:
                entry = heapq.heappop(self._heap)
                self._keys.discard((entry[1], entry[2], entry[0]))
                due.append(entry)
        for _, workflow_id, seq in due:
            self._on_fire(workflow_id, seq)

    def wait_and_fire(self, max_wait: float) -> None:
        """Wait until the first timer is due (at most ``max_wait`` s), fire it."""
        with self._condition:
            wait = max_wait
            if self._heap:
                until_due = (self._heap[0][0] - self._now()).total_seconds()
                wait = max(0.0, min(wait, until_due))
            if wait > 0:
                self._condition.wait(wait)
        self.fire_due()

    def wake(self) -> None:
        with self._condition:
            self._condition.notify_all()
