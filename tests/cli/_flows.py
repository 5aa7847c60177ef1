"""Workflows of the CLI and audit tests, importable by name (also by the
subprocesses that write journals and by ``chronik verify --module``)."""

from __future__ import annotations

from typing import Any

from actors import RetryPolicy, WorkflowContext, activity, workflow


@activity
def reserve(order_id: str) -> str:
    return f"res-{order_id}"


@activity
def charge(order_id: str, amount: int) -> dict[str, Any]:
    return {"id": f"ch-{order_id}", "amount": amount}


@activity(retry=RetryPolicy(max_attempts=1))
def explode(reason: str) -> None:
    raise ValueError(reason)


@activity
def tick(n: int) -> int:
    return n


@workflow(name="tests.cli.order")
async def order(ctx: WorkflowContext, order_id: str, amount: int) -> dict[str, Any]:
    """Versions, if the approval comes once it waits: 1 Started, 2-3 reserve,
    4 now, 5 awaiting, 6 the approval received, 7 consumed, 8-9 charge,
    10 Completed."""
    reservation = await ctx.call(reserve, order_id)
    stamp = ctx.now()
    approval = await ctx.receive("approval")
    paid = await ctx.call(charge, order_id, amount)
    return {
        "reservation": reservation,
        "charge": paid["id"],
        "approved_by": approval["by"],
        "at": stamp,
    }


@workflow(name="tests.cli.broken")
async def broken(ctx: WorkflowContext, reason: str) -> None:
    await ctx.call(explode, reason)


@workflow(name="tests.cli.ticker")
async def ticker(ctx: WorkflowContext, steps: int) -> int:
    total = 0
    for n in range(steps):
        total += await ctx.call(tick, n)
    return total


@workflow(name="tests.cli.fee")
async def fee(ctx: WorkflowContext, amount: int) -> dict[str, Any]:
    """Changed in ``_flows_changed``: runs recorded with this code no longer replay."""
    return await ctx.call(charge, "fee", amount)
