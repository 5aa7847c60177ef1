"""Workflows that are not deterministic: they read state outside ctx.

Those that call the clock, ``random`` or ``uuid`` turn the determinism guard off
(``guard="off"``), which would otherwise fail them at the call: the crash tester
must catch what the guard is told not to, or cannot, see."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from actors import WorkflowContext, workflow
from tests.testing._workflows import notify, reserve

CALLS = [0]  # a module-level counter that no reset puts back
SEEN: dict[str, int] = {}  # a dict mutated by every run


@workflow(name="tests.testing.coin_flip", guard="off")
async def coin_flip(ctx: WorkflowContext, order: str) -> str:
    """Which step runs depends on ``random.random()``."""
    await ctx.call(reserve, order)
    if random.random() < 0.5:  # the mistake under test
        sent: str = await ctx.call(notify, order)
        return sent
    await ctx.sleep("1h")
    return "slept"


@workflow(name="tests.testing.stamped", guard="off")
async def stamped(ctx: WorkflowContext, order: str) -> dict[str, Any]:
    """Records ``time.time()`` in its result."""
    reservation = await ctx.call(reserve, order)
    return {"reservation": reservation, "at": time.time()}


@workflow(name="tests.testing.fresh_ids", guard="off")
async def fresh_ids(ctx: WorkflowContext) -> str:
    """Passes ``uuid.uuid4()`` to a step, which echoes it."""
    reservation: str = await ctx.call(reserve, str(uuid.uuid4()))
    return reservation


@workflow(name="tests.testing.counted")
async def counted(ctx: WorkflowContext) -> int:
    """Its result is a module-level counter bumped on every run."""
    CALLS[0] += 1
    await ctx.call(reserve, "c")
    return CALLS[0]


@workflow(name="tests.testing.remembering")
async def remembering(ctx: WorkflowContext, order: str) -> str:
    """Takes a different step the second time a process sees ``order``."""
    SEEN[order] = SEEN.get(order, 0) + 1
    if SEEN[order] > 1:
        await ctx.sleep("1m")
    reservation: str = await ctx.call(reserve, order)
    return reservation
