"""``StepPool``: at most ``max_workers`` threads for sync step attempts.

Unlike ``concurrent.futures.ThreadPoolExecutor`` it knows that an attempt can
overrun: Python cannot stop a thread, so an attempt past its limit keeps its
thread until it returns, and that thread still counts against ``max_workers``.
When the late attempt returns, its thread ends (``Task`` returns False) and a
fresh one may take its place; threads therefore never exceed ``max_workers``,
and a pool whose threads all overrun runs nothing until one returns.
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Callable

__all__ = ["StepPool", "Task"]

Task = Callable[[], bool]
"""Runs one attempt; False when it overran, so its thread should end."""


class _PoolThread(threading.local):
    pool: StepPool | None = None  # the pool this thread works for, if any


_this_thread = _PoolThread()


def on_pool_thread() -> bool:
    """Whether the current thread is a step pool's."""
    return _this_thread.pool is not None


class StepPool:
    def __init__(self, max_workers: int) -> None:
        if max_workers < 1:
            msg = f"max_workers={max_workers!r} must be at least 1"
            raise ValueError(msg)
        self.max_workers = max_workers
        self._condition = threading.Condition()
        self._queue: collections.deque[Task] = collections.deque()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        # Invariant: busy counts tasks running and not overrun; overrunning
        # those past their limit that have not returned. Both hold a thread.
        self._busy = 0
        self._overrunning = 0
        self._closing = False
        self._numbers = itertools.count(1)

    @property
    def threads(self) -> int:
        with self._condition:
            return len(self._threads)

    @property
    def overrunning(self) -> int:
        """Attempts past their limit that still hold a thread."""
        with self._condition:
            return self._overrunning

    def put(self, task: Task) -> bool:
        """Queue ``task``; False (and dropped) once the pool is closing."""
        with self._condition:
            if self._closing:
                return False
            # A task put by one of this pool's own threads (the run its step
            # reported to asked for its next step) is taken by that thread
            # when it returns, with no wake-up, unless others wait already.
            mine = _this_thread.pool is self and not self._queue
            self._queue.append(task)
            if mine:
                return True
            if self._idle:
                self._condition.notify()
            elif len(self._threads) < self.max_workers:
                self._start_thread()
            return True

    def overran(self) -> None:
        """A running task passed its limit: ``drain`` no longer waits for it."""
        with self._condition:
            self._busy -= 1
            self._overrunning += 1
            self._condition.notify_all()

    def drain(self) -> None:
        """Take no more tasks, drop those waiting for a thread, wait for the
        running ones (not those that overran: their outcome is settled) and end
        the idle threads. A thread held by an overrunning attempt ends when it
        returns."""
        with self._condition:
            self._closing = True
            # A task with a thread free for it is under way: only those waiting
            # for a thread are queued work.
            free = len(self._threads) - self._busy - self._overrunning
            while len(self._queue) > max(free, 0):
                self._queue.pop()
            self._condition.notify_all()
            self._condition.wait_for(
                lambda: self._busy <= 0 and len(self._threads) <= self._overrunning
            )

    def _start_thread(self) -> None:
        name = f"chronik-step-{next(self._numbers)}"
        thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        _this_thread.pool = self
        while (task := self._take()) is not None:
            on_time = task()
            with self._condition:
                if on_time:
                    self._busy -= 1
                    self._condition.notify_all()
                    continue
                self._overrunning -= 1
                self._threads.discard(me)
                if self._queue and not self._closing:
                    self._start_thread()  # in its place
                self._condition.notify_all()
                return
        with self._condition:
            self._threads.discard(me)
            self._condition.notify_all()

    def _take(self) -> Task | None:
        with self._condition:
            self._idle += 1
            try:
                while not self._queue and not self._closing:
                    self._condition.wait()
            finally:
                self._idle -= 1
            if not self._queue:
                return None
            self._busy += 1
            return self._queue.popleft()
