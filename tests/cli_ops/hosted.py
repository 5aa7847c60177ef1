"""Workflows that ``chronik run tests/cli_ops/hosted.py`` hosts in the tests.

``configure`` spawns the runs named in ``CHRONIK_TEST_SPAWN`` (comma-separated
ids) of ``wait_for_approval``, so a test can start runs from the host itself.
"""

from __future__ import annotations

import os
from typing import Any

from actors import ActorSystem, WorkflowContext, activity, workflow


@activity
def record_request(order_id: str) -> str:
    return f"ticket-{order_id}"


@workflow
async def wait_for_approval(ctx: WorkflowContext, order_id: str) -> dict[str, Any]:
    ticket = await ctx.call(record_request, order_id)
    decision = await ctx.receive("approval")
    return {"order": order_id, "ticket": ticket, "decision": decision}


@workflow
async def finish_at_once(ctx: WorkflowContext, value: int) -> int:
    return value


def configure(system: ActorSystem) -> None:
    for run_id in filter(None, os.environ.get("CHRONIK_TEST_SPAWN", "").split(",")):
        system.spawn(wait_for_approval, run_id, id=run_id)
