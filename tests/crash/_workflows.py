"""The model workflows of the crash suite, importable by name (also by the
worker subprocess).

Every step is a pure function of its arguments (``outcome``), which the model in
``_model.py`` calls too: a step's *fate* argument says how it behaves without
injected faults. ``"ok"`` succeeds; ``"flaky"`` fails its first attempt (each
time it is run) and succeeds on the retry; ``"fatal"`` fails every attempt, so
the workflow sees ``StepFailed``. On top of that ``INJECTED`` makes attempts of a
run's steps fail transiently, never so many that a step exhausts its retries.

Each execution is logged (``EFFECTS``) with its idempotency key, in memory and,
when CHRONIK_CRASH_EFFECTS names a file, as a line appended and fsynced to it,
so a test counts executions across a killed process.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections import Counter
from typing import Any

import attrs

from actors import (
    ChildFailedError,
    ReceiveTimeoutError,
    RetryPolicy,
    Saga,
    StepFailed,
    WorkflowContext,
    activity,
    workflow,
)
from tests.crash import _stats

__all__ = [
    "EFFECTS",
    "EFFECTS_FILE",
    "INJECTED",
    "MAX_ATTEMPTS",
    "WORKFLOWS",
    "Effect",
    "FatalStepError",
    "TransientStepError",
    "append_line",
    "booking",
    "child",
    "collector",
    "outcome",
    "parent",
    "pipeline",
    "set_step_latency",
]

MAX_ATTEMPTS = 4
RETRY = RetryPolicy(max_attempts=MAX_ATTEMPTS, initial_interval=0.01, backoff=1.0)
EFFECTS_FILE = "CHRONIK_CRASH_EFFECTS"


class FatalStepError(Exception):
    """A step whose fate is ``"fatal"`` raises this on every attempt."""


class TransientStepError(Exception):
    """A failed attempt the step's retry policy absorbs."""


def outcome(step: str, label: str, value: int, fate: str) -> int:
    """What ``step`` returns without faults; ``FatalStepError`` if its fate is
    ``"fatal"``. The model predicts results with this very function."""
    if fate == "fatal":
        msg = f"{step} {label}({value}) fails for good"
        raise FatalStepError(msg)
    return (value * 31 + zlib.crc32(f"{step}:{label}".encode())) % 10_007


def append_line(path: str, line: str) -> None:
    """Append ``line`` to ``path`` in one write, durable before returning (a
    SIGKILL leaves the line whole or absent)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@attrs.frozen
class Effect:
    """One execution of a step's body."""

    key: str  # the idempotency key, "<workflow id>/<seq>"
    step: str
    attempt: int


class Effects:
    """The executions of step bodies in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._effects: list[Effect] = []

    def record(self, effect: Effect) -> None:
        with self._lock:
            self._effects.append(effect)
        path = os.environ.get(EFFECTS_FILE)
        if path:
            append_line(path, f"{effect.key} {effect.step} {effect.attempt}")

    def snapshot(self) -> list[Effect]:
        with self._lock:
            return list(self._effects)

    def clear(self) -> None:
        with self._lock:
            self._effects.clear()


EFFECTS = Effects()


class InjectedFailures:
    """Transient failures: the next ``n`` attempts of any step of a run raise
    ``TransientStepError``. Only attempts up to ``MAX_ATTEMPTS - 2`` are ever
    failed, so even a flaky step (which fails its first attempt by itself)
    succeeds within its retries. The bound is on the attempt number, which
    failed attempts make durable across crashes: a per-process count would let
    each new process after a kill inject two more at the same key, and spend
    the retries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()  # by workflow id
        self._at_key: Counter[str] = Counter()  # injected so far, by key

    def add(self, workflow_id: str, n: int) -> None:
        with self._lock:
            self._pending[workflow_id] += n

    def take(self, workflow_id: str, key: str, attempt: int) -> bool:
        """Whether this attempt fails (and one pending failure is used)."""
        with self._lock:
            if self._pending[workflow_id] <= 0:
                return False
            if self._at_key[key] >= MAX_ATTEMPTS - 2 or attempt > MAX_ATTEMPTS - 2:
                return False
            self._pending[workflow_id] -= 1
            self._at_key[key] += 1
            return True

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self._at_key.clear()


INJECTED = InjectedFailures()

_latency = 0.0  # real seconds each step body takes, after its effect


def set_step_latency(seconds: float) -> None:
    """Make every step body take ``seconds`` after its effect is logged, so a
    crash finds steps in flight (their effect done, their outcome not)."""
    global _latency
    _latency = seconds


def _execute(step: str, label: str, value: int, fate: str) -> int:
    info = activity.info()
    EFFECTS.record(Effect(info.idempotency_key, step, info.attempt))
    if _latency:
        time.sleep(_latency)
    if fate == "flaky" and info.attempt == 1:
        _stats.count("fault: flaky step attempts failed (by fate)")
        msg = f"{step} {label}: the first attempt of a flaky step fails"
        raise TransientStepError(msg)
    if INJECTED.take(info.workflow_id, info.idempotency_key, info.attempt):
        _stats.count("fault: step attempts failed transiently (injected)")
        msg = f"{step} {label}: injected transient failure"
        raise TransientStepError(msg)
    return outcome(step, label, value, fate)


WORK = "tests.crash.work"
RESERVE = "tests.crash.reserve"
RELEASE = "tests.crash.release"
CHARGE = "tests.crash.charge"
REFUND = "tests.crash.refund"
SHIP = "tests.crash.ship"


@activity(name=WORK, retry=RETRY)
def work(label: str, value: int, fate: str) -> int:
    return _execute(WORK, label, value, fate)


@activity(name=RESERVE, retry=RETRY)
def reserve(label: str, value: int, fate: str) -> int:
    return _execute(RESERVE, label, value, fate)


@activity(name=RELEASE, retry=RETRY)
def release(label: str, value: int, fate: str) -> int:
    return _execute(RELEASE, label, value, fate)


@activity(name=CHARGE, retry=RETRY)
def charge(label: str, value: int, fate: str) -> int:
    return _execute(CHARGE, label, value, fate)


@activity(name=REFUND, retry=RETRY)
def refund(label: str, value: int, fate: str) -> int:
    return _execute(REFUND, label, value, fate)


@activity(name=SHIP, retry=RETRY)
def ship(label: str, value: int, fate: str) -> int:
    return _execute(SHIP, label, value, fate)


# -- the workflows (their model twins are in _model.py) ------------------------------


@workflow(name="tests.crash.pipeline")
async def pipeline(
    ctx: WorkflowContext, x: int, fates: list[str], pause: float
) -> dict[str, Any]:
    """A step (fatal: the run fails), a timer, two parallel steps whose
    failures are kept, a timer."""
    a = await ctx.call(work, "a", x, fates[0])
    await ctx.sleep(pause)
    parts = await ctx.gather(
        ctx.call(work, "b", a, fates[1]),
        ctx.call(work, "c", a, fates[2]),
        return_exceptions=True,
    )
    await ctx.sleep(pause)
    return {"a": a, "parts": [p if isinstance(p, int) else "failed" for p in parts]}


@workflow(name="tests.crash.collector")
async def collector(
    ctx: WorkflowContext, x: int, count: int, timeout: float, fates: list[str]
) -> dict[str, Any]:
    """``count`` receives with a timeout, one without, then a step."""
    items: list[int | None] = []
    for _ in range(count):
        try:
            items.append(await ctx.receive("item", timeout=timeout))
        except ReceiveTimeoutError:
            items.append(None)
    done = await ctx.receive("done")
    value = x + sum(item for item in items if item is not None) + done
    try:
        total: int | None = await ctx.call(work, "total", value, fates[0])
    except StepFailed:
        total = None
    return {"items": items, "done": done, "total": total}


@workflow(name="tests.crash.child")
async def child(ctx: WorkflowContext, x: int, fates: list[str], pause: float) -> int:
    """Two steps around a timer; a fatal step fails the child."""
    a: int = await ctx.call(work, "child-a", x, fates[0])
    await ctx.sleep(pause)
    b: int = await ctx.call(work, "child-b", a, fates[1])
    return a + b


@workflow(name="tests.crash.parent")
async def parent(
    ctx: WorkflowContext, x: int, fates: list[str], pause: float, timeout: float
) -> dict[str, Any]:
    """A step, a child workflow (its failure caught), a receive with a timeout."""
    a = await ctx.call(work, "parent", x, fates[0])
    try:
        kid: int | str = await ctx.spawn(
            child, a, fates[1:3], pause, id=f"{ctx.workflow_id}.child"
        )
    except ChildFailedError:
        kid = "failed"
    try:
        go = await ctx.receive("go", timeout=timeout)
    except ReceiveTimeoutError:
        go = None
    return {"a": a, "child": kid, "go": go}


@workflow(name="tests.crash.booking")
async def booking(
    ctx: WorkflowContext, x: int, fates: list[str], timeout: float
) -> dict[str, Any]:
    """A saga: reserve, charge, wait for approval, ship; a failure (or no
    approval in time) refunds and releases, in that order."""
    try:
        async with Saga(ctx) as saga:
            held = await ctx.call(reserve, "reserve", x, fates[0])
            saga.add(release, "release", held, fates[3])
            paid = await ctx.call(charge, "charge", held, fates[1])
            saga.add(refund, "refund", paid, fates[4])
            extra = await ctx.receive("approve", timeout=timeout)
            sent = await ctx.call(ship, "ship", paid + extra, fates[2])
    except StepFailed as failed:
        return {"undone": failed.step}
    except ReceiveTimeoutError:
        return {"undone": "approve"}
    return {"shipped": sent}


WORKFLOWS = {
    definition.name: definition
    for definition in (pipeline, collector, child, parent, booking)
}
