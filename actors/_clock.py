"""Clocks: where the runtime reads the time, sleeps between retries, and learns
that timers are due. ``ManualClock`` makes week-long timers run in milliseconds."""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from actors._duration import Duration, to_seconds
from actors._timers import TimerService

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(abc.ABC):
    @abc.abstractmethod
    def now(self) -> datetime:
        """The current time, timezone-aware."""

    @abc.abstractmethod
    def sleep(self, seconds: float) -> None:
        """Wait between retry attempts."""

    def retry_wait(self, seconds: float) -> float:
        """Note a wait of ``seconds`` before a step's next attempt; return the
        real seconds to let pass first. The worker schedules the attempt for
        then, so no thread sleeps through the wait."""
        return seconds

    @abc.abstractmethod
    def drive(self, timers: TimerService) -> Callable[[], None]:
        """Fire ``timers`` when they fall due, until the returned stop is called."""


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def drive(self, timers: TimerService) -> Callable[[], None]:
        stopped = threading.Event()

        def run() -> None:
            while not stopped.is_set():
                timers.wait_and_fire(max_wait=1.0)

        thread = threading.Thread(target=run, name="chronik-timers", daemon=True)
        thread.start()

        def stop() -> None:
            stopped.set()
            timers.wake()
            thread.join()

        return stop


class ManualClock(Clock):
    """Time moves only when a test calls ``advance``, which fires the due timers
    before it returns. Retry waits are over at once; ``sleeps`` lists them."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self._now.utcoffset() is None:
            msg = f"ManualClock start {self._now!r} must be timezone-aware"
            raise ValueError(msg)
        self._lock = threading.Lock()
        self._services: list[TimerService] = []
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)

    def retry_wait(self, seconds: float) -> float:
        """Listed in ``sleeps`` like a sleep, and over at once."""
        self.sleep(seconds)
        return 0.0

    def advance(self, duration: Duration) -> None:
        """Move time forward and fire every timer now due."""
        seconds = to_seconds(duration)
        with self._lock:
            self._now += timedelta(seconds=seconds)
            services = list(self._services)
        for service in services:
            service.fire_due()

    def advance_to(self, when: datetime) -> None:
        """Move time forward to ``when`` (never back) and fire every timer due."""
        if when.utcoffset() is None:
            msg = f"advance_to({when!r}) needs a timezone-aware time"
            raise ValueError(msg)
        with self._lock:
            self._now = max(self._now, when)
            services = list(self._services)
        for service in services:
            service.fire_due()

    def next_due(self) -> datetime | None:
        """When the first timer pending in any system on this clock falls due."""
        with self._lock:
            services = list(self._services)
        due = [d for d in (s.next_due() for s in services) if d is not None]
        return min(due, default=None)

    def wait_for_timers(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until ``count`` timers are pending (a run reached its sleep)."""
        deadline = time.monotonic() + timeout
        while sum(service.pending for service in self._services) < count:
            if time.monotonic() > deadline:
                msg = f"fewer than {count} timers pending after {timeout} s"
                raise TimeoutError(msg)
            time.sleep(0.001)

    def drive(self, timers: TimerService) -> Callable[[], None]:
        with self._lock:
            self._services.append(timers)

        def stop() -> None:
            with self._lock:
                self._services.remove(timers)

        return stop
