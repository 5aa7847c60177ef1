"""``tests.cli.fee`` changed: a step before the charge, unguarded by
``ctx.patched``. Importing this module makes it the current code of the name."""

from __future__ import annotations

from typing import Any

from actors import WorkflowContext, workflow
from tests.cli._flows import charge, reserve


@workflow(name="tests.cli.fee")
async def fee(ctx: WorkflowContext, amount: int) -> dict[str, Any]:
    await ctx.call(reserve, "fee")
    return await ctx.call(charge, "fee", amount)
