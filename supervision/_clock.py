"""Clocks: where supervisors read the time (restart intensity, backoff reset) and
schedule delayed restarts (backoff). ``ManualClock`` makes backoff tests instant."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Cancel", "Clock", "ManualClock", "SystemClock"]

Cancel = Callable[[], None]
"""Withdraws a scheduled callback; a no-op once it ran."""


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancel:
        """Run ``callback`` (from any thread) once ``delay`` seconds have passed."""
        ...


class SystemClock:
    """Real time; each scheduled callback runs on a daemon timer thread."""

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancel:
        timer = threading.Timer(max(0.0, delay), callback)
        timer.daemon = True
        timer.name = "chronik-supervision-timer"
        timer.start()
        return timer.cancel


class ManualClock:
    """Time moves only when a test calls ``advance``, which runs the callbacks that
    fell due, in due order, before it returns."""

    def __init__(self, start: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._now = start
        self._order = itertools.count()
        # Invariant: a heap of (due, order, callback); cancelled entries are in
        # _cancelled until they are popped.
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancel:
        with self._lock:
            order = next(self._order)
            heapq.heappush(self._timers, (self._now + max(0.0, delay), order, callback))

        def cancel() -> None:
            with self._lock:
                if any(entry[1] == order for entry in self._timers):
                    self._cancelled.add(order)

        return cancel

    @property
    def pending(self) -> tuple[float, ...]:
        """Seconds from now until each scheduled callback falls due, soonest first."""
        with self._lock:
            return tuple(
                due - self._now
                for due, order, _ in sorted(self._timers)
                if order not in self._cancelled
            )

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running every callback that falls due
        (each sees the clock at its own due time)."""
        if seconds < 0:
            msg = f"ManualClock.advance({seconds!r}): time cannot go back"
            raise ValueError(msg)
        with self._lock:
            target = self._now + seconds
        while (callback := self._pop_due(target)) is not None:
            callback()
        with self._lock:
            self._now = max(self._now, target)

    def _pop_due(self, target: float) -> Callable[[], None] | None:
        with self._lock:
            while self._timers and self._timers[0][0] <= target:
                due, order, callback = heapq.heappop(self._timers)
                if order in self._cancelled:
                    self._cancelled.discard(order)
                    continue
                self._now = max(self._now, due)
                return callback
            return None
