"""Workflows and steps of the testing toolkit's tests."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from typing import Any

from actors import (
    ReceiveTimeoutError,
    RetryPolicy,
    WorkflowContext,
    activity,
    workflow,
)

EFFECTS: list[str] = []  # what the outside world saw
LEDGER: dict[str, int] = {}  # the payment gateway: idempotency key -> amount
RUNS: Counter[str] = Counter()  # step name -> executions
GATE = threading.Event()  # held shut by a test to keep ``held`` running
ENTERED = threading.Event()


def reset() -> None:
    EFFECTS.clear()
    LEDGER.clear()
    RUNS.clear()


@activity(name="tests.testing.reserve")
def reserve(order: str) -> str:
    RUNS["reserve"] += 1
    EFFECTS.append(f"reserve {order}")
    return f"res-{order}"


@activity(name="tests.testing.charge")
def charge(order: str, amount: int) -> str:
    """Idempotent: the gateway books each idempotency key once."""
    RUNS["charge"] += 1
    key = activity.info().idempotency_key
    LEDGER.setdefault(key, amount)
    return f"ch-{order}"


@activity(name="tests.testing.charge_naively")
def charge_naively(order: str, amount: int) -> str:
    """Not idempotent: every execution books the amount again."""
    RUNS["charge"] += 1
    EFFECTS.append(f"charge {amount} for {order}")
    return f"ch-{order}"


@activity(name="tests.testing.notify")
def notify(order: str) -> str:
    EFFECTS.append(f"notify {order}")
    return f"sent-{order}"


@activity(name="tests.testing.count", retry=RetryPolicy(max_attempts=1))
def count_runs() -> int:
    RUNS["count"] += 1
    return RUNS["count"]


@activity(name="tests.testing.held")
def held() -> str:
    RUNS["held"] += 1
    ENTERED.set()
    assert GATE.wait(5), "the test never opened the gate"
    return "released"


@activity(
    name="tests.testing.once",
    retry=RetryPolicy(max_attempts=1),
)
def once() -> str:
    return "once"


@activity(
    name="tests.testing.patient",
    retry=RetryPolicy(max_attempts=5, initial_interval=10.0, backoff=1.0),
    schedule_to_close=25.0,
)
def patient() -> str:
    return "patient"


@workflow(name="tests.testing.notify_customer")
async def notify_customer(ctx: WorkflowContext, order: str) -> str:
    await ctx.sleep("1h")
    sent: str = await ctx.call(notify, order)
    return sent


@workflow(name="tests.testing.order_flow")
async def order_flow(ctx: WorkflowContext, order: str, amount: int) -> dict[str, Any]:
    """Reserve, wait a day, wait for approval (a week at most), charge, notify."""
    reservation = await ctx.call(reserve, order)
    await ctx.sleep("1d")
    approved = await ctx.receive("approve", timeout="7d")
    try:
        note = await ctx.receive("note", timeout="1h")
    except ReceiveTimeoutError:
        note = None
    if not approved:
        return {"order": order, "status": "rejected"}
    charged = await ctx.call(charge, order, amount)
    sent = await ctx.spawn(notify_customer, order)
    return {
        "order": order,
        "reservation": reservation,
        "charge": charged,
        "note": note,
        "sent": sent,
        "at": ctx.now().isoformat(),
    }


@workflow(name="tests.testing.naive_order")
async def naive_order(ctx: WorkflowContext, order: str, amount: int) -> str:
    await ctx.call(reserve, order)
    charged: str = await ctx.call(charge_naively, order, amount)
    return charged


@workflow(name="tests.testing.counting")
async def counting(ctx: WorkflowContext) -> int:
    """Its result says how often its step ran: it differs after a crash."""
    ran: int = await ctx.call(count_runs)
    return ran


@workflow(name="tests.testing.sleeper")
async def sleeper(ctx: WorkflowContext, *naps: str) -> list[str]:
    """Sleeps each nap in turn; returns the time after each."""
    times = []
    for nap in naps:
        await ctx.sleep(nap)
        times.append(ctx.now().isoformat())
    return times


@workflow(name="tests.testing.held_then_now")
async def held_then_now(ctx: WorkflowContext) -> str:
    await ctx.call(held)
    now: datetime = ctx.now()
    return now.isoformat()


@workflow(name="tests.testing.waiter")
async def waiter(ctx: WorkflowContext) -> Any:
    return await ctx.receive("go")


@workflow(name="tests.testing.budgets")
async def budgets(ctx: WorkflowContext) -> list[str]:
    return [await ctx.call(once), await ctx.call(patient), await ctx.call(reserve, "b")]


@workflow(name="tests.testing.failing")
async def failing(ctx: WorkflowContext) -> None:
    await ctx.sleep("1h")
    msg = "out of stock"
    raise ValueError(msg)
