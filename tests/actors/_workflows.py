"""Workflows shared by the tests and the crash subprocess (importable by name).

Each step appends a line to the file named by CHRONIK_COUNT_FILE, so a test can
count executions across processes; ``block_on_ship`` makes ``ship`` hang, as a
process killed mid-step would.
"""

from __future__ import annotations

import os
import time
from typing import Any

from actors import WorkflowContext, activity, workflow


def _count(name: str) -> None:
    with open(os.environ["CHRONIK_COUNT_FILE"], "a", encoding="utf-8") as file:
        file.write(f"{name} {activity.info().idempotency_key}\n")
        file.flush()
        os.fsync(file.fileno())


@activity
def reserve(order_id: str) -> str:
    _count("reserve")
    return f"res-{order_id}"


@activity
def ship(reservation: str) -> str:
    _count("ship")
    while os.environ.get("CHRONIK_BLOCK_SHIP"):
        time.sleep(1)
    return f"shipped-{reservation}"


@workflow
async def fulfil(ctx: WorkflowContext, order_id: str) -> dict[str, Any]:
    reservation = await ctx.call(reserve, order_id)
    shipment = await ctx.call(ship, reservation)
    return {"order": order_id, "shipment": shipment}
