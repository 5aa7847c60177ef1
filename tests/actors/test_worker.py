"""The worker: bounded threads under timeouts, one event loop for async steps,
retries scheduled rather than slept, resuming a step, closing."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from actors import (
    ActivityInfo,
    ManualClock,
    RetryPolicy,
    RunContextFilter,
    SystemClock,
    activity,
)
from actors._messages import AttemptFailed, StepOutcome
from actors._worker import StepJob, Worker, WorkerError

Message = AttemptFailed | StepOutcome | WorkerError


class Reports:
    """What a worker reported, by seq; ``wait`` until ``count`` steps ended."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._condition = threading.Condition()

    def __call__(self, message: Message) -> None:
        with self._condition:
            self.messages.append(message)
            self._condition.notify_all()

    def ended(self) -> list[StepOutcome]:
        return [m for m in self.messages if isinstance(m, StepOutcome)]

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[StepOutcome]:
        with self._condition:
            done = self._condition.wait_for(
                lambda: len(self.ended()) >= count, timeout=timeout
            )
        assert done, f"{len(self.ended())} of {count} steps ended: {self.messages}"
        return self.ended()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # no test leaves a step hanging


def make_worker(max_workers: int, clock: Any, **options: Any) -> Worker:
    return Worker(max_workers, clock=clock, normalise=lambda value: value, **options)


def job(step: Any, seq: int = 1, *args: Any, **options: Any) -> StepJob:
    return StepJob(step, args, "wf", seq, **options)


# -- threads stay bounded -------------------------------------------------------------


def test_sync_steps_that_overrun_their_timeout_never_hold_more_than_max_workers_threads(
    clock: ManualClock,
) -> None:
    running, most_running, lock = [0], [0], threading.Lock()

    @activity(retry=RetryPolicy(max_attempts=1), start_to_close=0.02)
    def overruns() -> str:
        with lock:
            running[0] += 1
            most_running[0] = max(most_running[0], running[0])
        time.sleep(0.1)  # five times its limit
        with lock:
            running[0] -= 1
        return "too late"

    worker = make_worker(2, clock)
    reports = Reports()
    most_threads = 0
    try:
        for seq in range(1, 21):
            worker.submit(job(overruns, seq), reports)
        while len(reports.ended()) < 20:
            most_threads = max(most_threads, worker.threads)
            time.sleep(0.002)
        outcomes = reports.wait(20)
    finally:
        worker.close()
    print(f"\n20 overrunning steps, max_workers=2: at most {most_threads} threads")
    assert most_threads <= 2 + 1  # the pool and the watchdog; no loop was needed
    assert most_running[0] <= 2
    assert {o.error.type for o in outcomes if o.error} == {"StepTimeoutError"}
    assert len(outcomes) == 20
    assert worker.overruns == 20


def test_an_overrunning_attempt_holds_its_thread_and_is_named_once_when_it_returns(
    clock: ManualClock, gate: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    @activity(
        retry=RetryPolicy(max_attempts=2, initial_interval=3), start_to_close=0.05
    )
    def hangs_first() -> str:
        attempt = activity.info().attempt
        if attempt == 1:
            gate.wait(10)
        return f"done on attempt {attempt}"

    worker = make_worker(1, clock)
    reports = Reports()
    try:
        worker.submit(job(hangs_first, 7), reports)
        deadline = time.monotonic() + 5
        while not reports.messages and time.monotonic() < deadline:
            time.sleep(0.005)
        [failed] = reports.messages  # attempt 1 timed out; attempt 2 waits
        assert isinstance(failed, AttemptFailed)
        assert (failed.attempt, failed.error.type) == (1, "StepTimeoutError")
        assert (worker.overrunning, worker.threads) == (1, 2)
        time.sleep(0.1)
        assert reports.ended() == []  # the one thread is still held
        gate.set()
        [outcome] = reports.wait()
    finally:
        worker.close()
    assert (outcome.result, outcome.error) == ("done on attempt 2", None)
    assert clock.sleeps == [3.0]
    named = [r.getMessage() for r in caplog.records if "wf/7" in r.getMessage()]
    late = [message for message in named if "past its" in message]
    assert len(late) == 1
    assert "hangs_first attempt 1" in late[0]
    assert "limit; its result is dropped" in late[0]
    assert worker.overrunning == 0


def test_an_attempt_still_overrunning_after_the_warning_delay_is_named_once(
    clock: ManualClock, gate: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    @activity(retry=RetryPolicy(max_attempts=1), start_to_close=0.02)
    def hangs() -> None:
        gate.wait(10)

    worker = make_worker(1, clock, overrun_warning_after=0.05)
    reports = Reports()
    try:
        worker.submit(job(hangs, 3), reports)
        [outcome] = reports.wait()
        assert outcome.error is not None
        deadline = time.monotonic() + 5
        while "still holds" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.005)
        gate.set()
    finally:
        worker.close()
    named = [r.getMessage() for r in caplog.records if "wf/3" in r.getMessage()]
    overrun = [m for m in named if "overrun" in m or "past its" in m]
    assert len(overrun) == 1
    assert "step" in overrun[0]
    assert "hangs" in overrun[0]
    assert "still holds a worker thread" in overrun[0]


# -- async steps share one loop -------------------------------------------------------


def test_a_thousand_async_steps_sleeping_100_ms_overlap_on_one_thread(
    clock: ManualClock,
) -> None:
    @activity
    async def naps(n: int) -> int:
        await asyncio.sleep(0.1)
        return n

    worker = make_worker(4, clock)
    reports = Reports()
    try:
        started = time.perf_counter()
        for seq in range(1, 1001):
            worker.submit(job(naps, seq, seq), reports)
        outcomes = reports.wait(1000, timeout=30)
        seconds = time.perf_counter() - started
        threads = worker.threads
    finally:
        worker.close()
    print(f"\n1,000 async steps x 100 ms: {seconds:.3f} s on {threads} thread(s)")
    assert seconds < 5.0
    assert threads == 1
    assert sorted(o.result for o in outcomes) == list(range(1, 1001))


def test_an_async_step_past_its_limit_is_cancelled_and_retried(
    clock: ManualClock,
) -> None:
    @activity(retry=RetryPolicy(max_attempts=2, initial_interval=1), timeout=0.05)
    async def slow_first() -> int:
        attempt = activity.info().attempt
        if attempt == 1:
            await asyncio.sleep(10)
        return attempt

    worker = make_worker(1, clock)
    reports = Reports()
    try:
        worker.submit(job(slow_first), reports)
        [outcome] = reports.wait()
    finally:
        worker.close()
    assert outcome.result == 2
    [failed] = [m for m in reports.messages if isinstance(m, AttemptFailed)]
    assert failed.error.type == "StepTimeoutError"


# -- resuming a step: attempts, budget, delay ----------------------------------------


@pytest.mark.parametrize("is_async", [False, True])
def test_a_step_resumed_at_attempt_3_goes_on_counting_and_stops_at_max_attempts(
    clock: ManualClock, is_async: bool
) -> None:
    seen: list[int] = []

    def fail() -> None:
        seen.append(activity.info().attempt)
        raise ConnectionError("refused")

    async def fail_async() -> None:
        fail()

    policy = RetryPolicy(max_attempts=4, initial_interval=1, backoff=2)
    step = activity(retry=policy)(fail_async if is_async else fail)
    worker = make_worker(2, clock)
    reports = Reports()
    try:
        worker.submit(job(step, first_attempt=3), reports)
        [outcome] = reports.wait()
    finally:
        worker.close()
    assert seen == [3, 4]
    [failed] = [m for m in reports.messages if isinstance(m, AttemptFailed)]
    assert (failed.attempt, failed.retry_in) == (3, 4.0)  # 1 * 2 ** (3 - 1)
    assert clock.sleeps == [4.0]
    assert outcome.error is not None
    assert outcome.error.type == "ConnectionError"


def test_the_spent_budget_of_a_resumed_step_counts_toward_schedule_to_close(
    clock: ManualClock,
) -> None:
    limits: list[float | None] = []

    @activity(
        retry=RetryPolicy(max_attempts=10, initial_interval=1, backoff=1),
        schedule_to_close=10,
    )
    def fails() -> None:
        limits.append(activity.info().time_limit)
        raise ConnectionError("refused")

    worker = make_worker(1, clock)
    reports = Reports()
    try:
        worker.submit(job(fails, spent=7.5), reports)
        [outcome] = reports.wait()
    finally:
        worker.close()
    # 7.5 s spent: two 1 s delays fit, a third would end past 10 s.
    assert len(limits) == 3
    assert clock.sleeps == [1.0, 1.0]
    assert all(limit is not None and limit <= 2.5 for limit in limits)
    assert outcome.error is not None
    assert "schedule-to-close timeout of 10" in outcome.error.message


def test_a_delay_still_to_wait_is_asked_of_the_clock_and_counts_toward_the_budget(
    clock: ManualClock,
) -> None:
    infos: list[ActivityInfo] = []

    @activity(schedule_to_close=3)
    def records() -> str:
        infos.append(activity.info())
        return "ok"

    worker = make_worker(1, clock)
    reports = Reports()
    try:
        worker.submit(job(records, delay=2.0), reports)
        [outcome] = reports.wait()
    finally:
        worker.close()
    assert outcome.result == "ok"
    assert clock.sleeps == [2.0]
    [info] = infos
    assert info.time_limit is not None
    assert info.time_limit <= 1.0


@pytest.mark.parametrize("is_async", [False, True])
def test_a_delay_on_the_system_clock_passes_before_the_first_attempt_on_no_pool_thread(
    is_async: bool,
) -> None:
    started: list[float] = []

    def record() -> None:
        started.append(time.monotonic())

    async def record_async() -> None:
        record()

    step = activity(record_async if is_async else record)
    worker = make_worker(1, SystemClock())
    reports = Reports()
    try:
        submitted = time.monotonic()
        worker.submit(job(step, delay=0.2), reports)
        if not is_async:
            time.sleep(0.05)
            assert worker.pool.threads == 0  # the wait is on the watchdog
        reports.wait()
    finally:
        worker.close()
    assert started[0] - submitted >= 0.19


def test_retry_waits_on_the_system_clock_hold_no_pool_thread() -> None:
    @activity(retry=RetryPolicy(max_attempts=2, initial_interval=0.3))
    def fails_once() -> int:
        if activity.info().attempt == 1:
            raise ConnectionError("refused")
        return 2

    @activity
    def quick() -> str:
        return "quick"

    worker = make_worker(1, SystemClock())
    reports = Reports()
    try:
        worker.submit(job(fails_once, 1), reports)
        time.sleep(0.05)  # attempt 1 failed; its retry waits
        worker.submit(job(quick, 2), reports)
        first = reports.wait(1, timeout=0.25)  # the one thread is free meanwhile
        assert [o.result for o in first] == ["quick"]
        assert [o.result for o in reports.wait(2)] == ["quick", 2]
    finally:
        worker.close()


# -- closing --------------------------------------------------------------------------


def test_closing_lets_the_running_attempt_report_and_drops_queued_work(
    clock: ManualClock, gate: threading.Event
) -> None:
    ran: list[int] = []

    @activity
    def blocks(n: int) -> int:
        ran.append(n)
        if n == 1:
            gate.wait(10)
        return n

    worker = make_worker(1, clock)
    reports = Reports()
    worker.submit(job(blocks, 1, 1), reports)
    worker.submit(job(blocks, 2, 2), reports)  # queued behind the first
    while not ran:
        time.sleep(0.002)
    closer = threading.Thread(target=worker.close)
    closer.start()
    time.sleep(0.05)
    assert closer.is_alive()  # waiting for the running attempt
    gate.set()
    closer.join(5)
    assert not closer.is_alive()
    assert ran == [1]
    assert [o.result for o in reports.ended()] == [1]
    worker.submit(job(blocks, 3, 3), reports)  # refused once closed
    assert ran == [1]
    assert worker.threads == 0


def test_closing_drops_async_steps_waiting_to_retry_and_ends_the_loop_thread() -> None:
    @activity(retry=RetryPolicy(max_attempts=2, initial_interval=60))
    async def fails() -> None:
        raise ConnectionError("refused")

    worker = make_worker(1, SystemClock())
    reports = Reports()
    worker.submit(job(fails), reports)
    while not reports.messages:
        time.sleep(0.002)
    started = time.monotonic()
    worker.close()
    assert time.monotonic() - started < 5  # not the 60 s wait
    assert [type(m) for m in reports.messages] == [AttemptFailed]
    assert worker.threads == 0


# -- what a step sees -----------------------------------------------------------------


@pytest.mark.parametrize("is_async", [False, True])
def test_a_step_sees_its_activity_info_and_logs_in_its_run_scope(
    clock: ManualClock, is_async: bool
) -> None:
    seen: list[tuple[Any, ...]] = []

    def look() -> None:
        info = activity.info()
        record = logging.LogRecord("step", logging.INFO, "", 0, "hi", None, None)
        RunContextFilter().filter(record)
        scope = (record.run_id, record.seq, record.attempt)  # type: ignore[attr-defined]
        seen.append((info.idempotency_key, info.attempt, info.time_limit, scope))

    async def look_async() -> None:
        look()

    step = activity(timeout=5)(look_async if is_async else look)
    worker = make_worker(1, clock)
    reports = Reports()
    try:
        worker.submit(job(step, 4, first_attempt=2), reports)
        reports.wait()
    finally:
        worker.close()
    assert seen == [("wf/4", 2, 5.0, ("wf", 4, 2))]


@pytest.mark.parametrize("is_async", [False, True])
def test_a_failed_attempt_is_reported_before_the_final_outcome(
    clock: ManualClock, is_async: bool
) -> None:
    def fail_once() -> str:
        if activity.info().attempt == 1:
            raise ConnectionError("refused")
        return "ok"

    async def fail_once_async() -> str:
        return fail_once()

    policy = RetryPolicy(max_attempts=3, initial_interval=0.5)
    step = activity(retry=policy)(fail_once_async if is_async else fail_once)
    worker = make_worker(1, clock)
    reports = Reports()
    try:
        worker.submit(job(step, 9), reports)
        reports.wait()
    finally:
        worker.close()
    failed, outcome = reports.messages
    assert isinstance(failed, AttemptFailed)
    assert (failed.seq, failed.attempt, failed.retry_in) == (9, 1, 0.5)
    assert failed.error.type == "ConnectionError"
    assert failed.error.retryable
    assert isinstance(outcome, StepOutcome)
    assert (outcome.seq, outcome.result, outcome.failures) == (9, "ok", ())
