"""The workflows the workflow benchmark runs, importable by name in every process.

A workflow's registered name is ``"module:qualname"``, and a reopened system finds
its code by importing that module; so these live here, always imported as
``benchmarks._workloads``, never run as ``__main__``.
"""

from __future__ import annotations

import os
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


@workflow
async def wait_for_go(ctx: WorkflowContext) -> Any:
    return await ctx.receive(GO)


@activity
def mark_executed(side_file: str) -> None:
    """Append this run's id to ``side_file``, durably: one line per execution."""
    line = f"{activity.info().workflow_id}\n"
    with open(side_file, "a", encoding="utf-8") as file:
        file.write(line)
        file.flush()
        os.fsync(file.fileno())


@workflow
async def step_then_wait(ctx: WorkflowContext, side_file: str) -> Any:
    await ctx.call(mark_executed, side_file)
    return await ctx.receive(GO)
