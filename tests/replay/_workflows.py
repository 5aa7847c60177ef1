"""Workflows of the replay tests (importable by name, also by the holder process).

``work`` appends its label to ``executed``, so a test sees whether any step ran.
"""

from __future__ import annotations

import contextlib
from typing import Any

from actors import (
    ReceiveTimeoutError,
    RetryPolicy,
    WorkflowCancelled,
    WorkflowContext,
    WorkflowDefinition,
    activity,
    workflow,
)

executed: list[str] = []  # the labels of the steps run in this process


@activity
def work(label: str) -> str:
    executed.append(label)
    return f"did {label}"


@activity
def audit(label: str) -> str:
    executed.append(f"audit {label}")
    return f"audited {label}"


@workflow(name="tests.replay.two_steps")
async def two_steps(ctx: WorkflowContext, order: str) -> list[Any]:
    first = await ctx.call(work, f"{order} 1")
    stamp = ctx.now()
    second = await ctx.call(work, f"{order} 2")
    return [first, second, stamp.isoformat()]


@workflow(name="tests.replay.sleeps")
async def sleeps(ctx: WorkflowContext) -> str:
    await ctx.call(work, "before the nap")
    await ctx.sleep("1h")
    result: str = await ctx.call(work, "after the nap")
    return result


@workflow(name="tests.replay.waits")
async def waits(ctx: WorkflowContext, rounds: int) -> list[Any]:
    return [await ctx.receive("go") for _ in range(rounds)]


@workflow(name="tests.replay.parent")
async def parent(ctx: WorkflowContext) -> Any:
    token = ctx.uuid4()
    child = await ctx.spawn(waits, 1)
    return [child, str(token)]


# -- one workflow name, three versions of its code ----------------------------------

FEE = "tests.replay.fee"


async def _fee_v1(ctx: WorkflowContext, amount: int) -> str:
    charged: str = await ctx.call(work, f"charge {amount}")
    await ctx.receive("confirm")
    return charged


async def _fee_v2_patched(ctx: WorkflowContext, amount: int) -> str:
    charged: str = await ctx.call(work, f"charge {amount}")
    if ctx.patched("add-fee"):
        await ctx.call(audit, "fee")
    await ctx.receive("confirm")
    return charged


async def _fee_v2_unguarded(ctx: WorkflowContext, amount: int) -> str:
    charged: str = await ctx.call(work, f"charge {amount}")
    await ctx.call(audit, "fee")
    await ctx.receive("confirm")
    return charged


# Not registered: each test says which version is "the current code".
fee_v1 = WorkflowDefinition(_fee_v1, FEE)
fee_v2_patched = WorkflowDefinition(_fee_v2_patched, FEE)
fee_v2_unguarded = WorkflowDefinition(_fee_v2_unguarded, FEE)


@activity
def keep(value: Any) -> Any:
    executed.append("keep")
    return value


@workflow(name="tests.replay.echoes")
async def echoes(ctx: WorkflowContext, value: Any) -> Any:
    return await ctx.call(keep, value)


@workflow(name="tests.replay.cancellable")
async def cancellable(ctx: WorkflowContext) -> str:
    await ctx.call(work, "book")
    try:
        await ctx.sleep("1d")
    except WorkflowCancelled:
        await ctx.call(work, "unbook")  # compensate, then end cancelled
        raise
    return "slept"


@workflow(name="tests.replay.fails")
async def fails(ctx: WorkflowContext) -> None:
    await ctx.call(broken, "on purpose")


@activity(retry=RetryPolicy(max_attempts=2, initial_interval=0.01))
def broken(reason: str) -> None:
    executed.append("broken")
    raise ValueError(reason)


@workflow(name="tests.replay.busy")
async def busy(ctx: WorkflowContext) -> list[Any]:
    detached = await ctx.spawn(waits, 1, detached=True)
    results = await ctx.gather(
        ctx.call(work, "left"),
        ctx.call(broken, "right"),
        ctx.sleep("1m"),
        return_exceptions=True,
    )
    with contextlib.suppress(ReceiveTimeoutError):
        await ctx.receive("never", timeout="1h")
    return [detached, str(results[1]), ctx.random() < 1]
