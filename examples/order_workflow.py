"""A durable order workflow: a flaky charge retried, a day-long timer, a signal.

Run: python examples/order_workflow.py [journal-dir]

The clock is a ManualClock, so the 24-hour sleep passes in an instant.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any

from actors import (
    ActorSystem,
    ManualClock,
    RetryPolicy,
    WorkflowContext,
    activity,
    workflow,
)

attempts: list[int] = []


@activity(retry=RetryPolicy(max_attempts=5, initial_interval=0.5, backoff=2.0))
def charge_card(order_id: str, amount: int) -> dict[str, Any]:
    info = activity.info()
    attempts.append(info.attempt)
    if info.attempt == 1:
        raise ConnectionError("payment gateway timed out")
    return {"id": f"ch-{order_id}", "amount": amount, "key": info.idempotency_key}


@workflow
async def process_order(ctx: WorkflowContext, order_id: str, amount: int) -> dict:
    charge = await ctx.call(charge_card, order_id, amount)
    await ctx.sleep("24h")
    decision = await ctx.receive("approval", timeout="7d")
    return {"order": order_id, "charge": charge["id"], "approved": decision}


def main(path: str) -> None:
    clock = ManualClock()
    with ActorSystem.open(path, clock=clock) as system:
        ref = system.spawn(process_order, "o-1", 100, id="order-o-1")
        ref.send("approval", True)
        clock.wait_for_timers(1)
        clock.advance("24h")
        print(f"{ref.id}: {ref.result(timeout=10)} after attempts {attempts}")
    with ActorSystem.open(path, clock=clock) as system:  # as a restarted process
        print(f"reopened: {system.ref('order-o-1').result(timeout=10)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="chronik-"))
