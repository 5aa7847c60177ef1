"""Workflows of the contract tests, importable by name (also from a subprocess).

Every step execution is logged as ``(step, idempotency key, attempt)`` in
``EXECUTIONS`` and, when CHRONIK_COUNT_FILE is set, as a line of that file (so a
test can count executions across a killed process). A step blocks while the file
named by CHRONIK_BLOCK_FILE does not exist, as a process killed mid-step would.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from actors import RetryPolicy, WorkflowContext, activity, workflow

EXECUTIONS: list[tuple[str, str, int]] = []
_lock = threading.Lock()


def log_execution(step: str) -> None:
    """Log one execution of ``step`` (the running attempt) with its key."""
    info = activity.info()
    with _lock:
        EXECUTIONS.append((step, info.idempotency_key, info.attempt))
    name = os.environ.get("CHRONIK_COUNT_FILE")
    if name:
        with open(name, "a", encoding="utf-8") as file:
            file.write(f"{step} {info.idempotency_key} {info.attempt}\n")
            file.flush()
            os.fsync(file.fileno())


def _block_while_told() -> None:
    """Hang until CHRONIK_BLOCK_FILE exists (if that variable is set)."""
    name = os.environ.get("CHRONIK_BLOCK_FILE")
    while name and not os.path.exists(name):
        time.sleep(0.01)


@activity(retry=RetryPolicy(max_attempts=3, initial_interval=0.01))
def reserve(order: str) -> str:
    """Fails its first attempt (each time it is run), succeeds on the second."""
    log_execution("reserve")
    if activity.info().attempt == 1:
        raise ConnectionError(f"reserve {order}: first attempt always fails")
    return f"res-{order}"


@activity
def double(value: int) -> int:
    log_execution("double")
    return value * 2


@activity
def ship(reservation: str, decision: str) -> str:
    log_execution("ship")
    _block_while_told()
    return f"shipped-{reservation}-{decision}"


@workflow(name="tests.contract.pipeline")
async def pipeline(ctx: WorkflowContext, order: str) -> dict[str, Any]:
    """A retried step, a durable timer, two signals, then two parallel steps."""
    reservation = await ctx.call(reserve, order)
    await ctx.sleep("1h")
    first = await ctx.receive("first")
    second = await ctx.receive("second")
    doubled = await ctx.gather(ctx.call(double, first), ctx.call(double, second))
    return {"reservation": reservation, "doubled": doubled}


@workflow(name="tests.contract.approval")
async def approval(ctx: WorkflowContext, order: str) -> dict[str, Any]:
    """A step, a signal, a step that may hang, then a second signal."""
    reservation = await ctx.call(reserve, order)
    decision = await ctx.receive("approve")
    shipment = await ctx.call(ship, reservation, decision)
    note = await ctx.receive("note")
    return {"shipment": shipment, "note": note}


@workflow(name="tests.contract.evolving")
async def evolving(ctx: WorkflowContext, order: str) -> str:
    """Two steps; a test re-registers this name with other code."""
    reservation = await ctx.call(reserve, order)
    return str(await ctx.call(ship, reservation, "auto"))
