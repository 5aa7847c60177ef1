"""The workflows the workflow benchmark runs, importable by name in every process.

A workflow's registered name is ``"module:qualname"``, and a reopened system finds
its code by importing that module; so these live here, always imported as
``benchmarks._workloads``, never run as ``__main__``.

The step bodies are the peers' (``/work/shared/peers/common/benchlib.py``): a W1/W2
step returns ``{"i": i, "t": time.time()}``; W4's step appends its run's id to a side
file (a plain append, no fsync: the benchmark kills processes, not the machine).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from actors import WorkflowContext, activity, workflow

GO = "go"


@activity
def noop() -> None:
    return None


@workflow
async def sequential_noops(ctx: WorkflowContext, steps: int) -> int:
    for _ in range(steps):
        await ctx.call(noop)
    return steps


@activity
def stamp(i: int) -> dict[str, Any]:
    return {"i": i, "t": time.time()}


@workflow
async def stamped_steps(ctx: WorkflowContext, steps: int) -> list[float]:
    """``steps`` sequential steps; the time stamped inside each, in order."""
    stamps = []
    for i in range(steps):
        out = await ctx.call(stamp, i)
        stamps.append(out["t"])
    return stamps


@activity
async def sleep_100ms() -> None:
    await asyncio.sleep(0.1)


@workflow
async def one_async_sleep(ctx: WorkflowContext) -> int:
    await ctx.call(sleep_100ms)
    return 1


@workflow
async def wait_for_go(ctx: WorkflowContext) -> Any:
    return await ctx.receive(GO)


@activity
def mark_executed(side_file: str) -> None:
    """Append this run's id to ``side_file``: one line per execution."""
    fd = os.open(side_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{activity.info().workflow_id}\n".encode())
    finally:
        os.close(fd)


@workflow
async def step_then_wait(ctx: WorkflowContext, side_file: str) -> Any:
    await ctx.call(mark_executed, side_file)
    return await ctx.receive(GO)
