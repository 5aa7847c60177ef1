"""``Watchdog``: one thread that calls functions when they fall due.

The worker's only timer: it fails sync step attempts that run past their limit
and starts the attempts whose retry wait is over, so no thread sleeps through a
timeout or a backoff. Its calls must be short: they run one after another.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Watchdog"]

logger = logging.getLogger("chronik.actors")


class _Entry:
    __slots__ = ("call", "cancelled", "due", "number")

    def __init__(self, due: float, number: int, call: Callable[[], None]) -> None:
        self.due = due
        self.number = number  # ties go in the order they were asked
        self.call = call
        self.cancelled = False

    def __lt__(self, other: _Entry) -> bool:
        return (self.due, self.number) < (other.due, other.number)


class Watchdog:
    """Calls ``call_later``'s functions on its thread, started at the first."""

    def __init__(self, name: str = "chronik-step-watchdog") -> None:
        self._name = name
        self._condition = threading.Condition()
        # Invariant: a heap by (due, number); cancelled entries stay until popped.
        self._heap: list[_Entry] = []
        self._numbers = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def call_later(self, seconds: float, call: Callable[[], None]) -> _Entry | None:
        """Call ``call`` in ``seconds``; None (and never) once closed. Pass the
        result to ``cancel`` to take it back."""
        with self._condition:
            if self._closed:
                return None
            entry = _Entry(time.monotonic() + seconds, next(self._numbers), call)
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=self._name, daemon=True
                )
                self._thread.start()
            elif self._heap[0] is entry:
                self._condition.notify()
            return entry

    def cancel(self, entry: _Entry | None) -> None:
        if entry is not None:
            entry.cancelled = True

    def close(self) -> None:
        """Drop every call not made yet; end the thread (after a call under way)."""
        with self._condition:
            self._closed = True
            self._heap.clear()
            self._condition.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while (entry := self._next()) is not None:
            try:
                entry.call()
            except Exception:  # its owner reports its own failures; this is a bug
                logger.exception("the step watchdog's call %r failed", entry.call)

    def _next(self) -> _Entry | None:
        """The next entry due, once it is; None once closed."""
        with self._condition:
            while not self._closed:
                heap = self._heap
                while heap and heap[0].cancelled:
                    heapq.heappop(heap)
                if not heap:
                    self._condition.wait()
                    continue
                wait = heap[0].due - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(heap)
                self._condition.wait(wait)
            return None
