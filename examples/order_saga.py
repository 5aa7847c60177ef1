"""An order saga: reserve inventory, charge payment, ship; undo in reverse on failure.

Run: python examples/order_saga.py [journal-dir]

Each completed step registers its compensation with a ``Saga``: releasing the
inventory undoes the reservation, a refund undoes the charge. Order o-1 ships
(after the carrier's API times out once and the step is retried). Order o-2's
address is rejected by the carrier, an error its ``RetryPolicy`` lists as
``non_retryable``: the ship step fails at once, the saga refunds the payment and
then releases the inventory, and the workflow *returns* a result with status
``"cancelled"`` (so the run completes; letting the ``StepFailed`` propagate out of
``async with`` instead would fail the run after the same compensations).

The clock is a ManualClock, so retry delays pass in an instant.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any

from actors import (
    ActorSystem,
    ManualClock,
    RetryPolicy,
    Saga,
    StepFailed,
    WorkflowContext,
    activity,
    workflow,
)

effects: list[str] = []  # what the outside world saw, in order


def _effect(line: str) -> None:
    effects.append(line)
    print(f"  {line}")


class AddressRejectedError(Exception):
    """The carrier cannot deliver to this address: retrying cannot help."""


@activity
def reserve_inventory(order_id: str, items: list[str]) -> str:
    _effect(f"reserve {', '.join(items)} for {order_id}")
    return f"res-{order_id}"


@activity
def release_inventory(reservation: str) -> None:
    _effect(f"release {reservation}")


@activity
def charge_payment(order_id: str, amount: int) -> dict[str, Any]:
    key = activity.info().idempotency_key  # the gateway deduplicates on it
    _effect(f"charge {amount} for {order_id} (key {key})")
    return {"id": f"ch-{order_id}", "amount": amount}


@activity
def refund_payment(charge_id: str, amount: int) -> None:
    _effect(f"refund {amount} on {charge_id}")


@activity(
    retry=RetryPolicy(
        max_attempts=3, initial_interval=1.0, non_retryable=[AddressRejectedError]
    )
)
def ship_order(order_id: str, address: str) -> str:
    attempt = activity.info().attempt
    if address == "nowhere":
        _effect(f"ship {order_id}: address {address!r} rejected")
        raise AddressRejectedError(f"carrier cannot deliver to {address!r}")
    if attempt == 1:
        _effect(f"ship {order_id}: carrier API timed out (attempt {attempt})")
        raise ConnectionError("carrier API timed out")
    _effect(f"ship {order_id} to {address} (attempt {attempt})")
    return f"trk-{order_id}"


@workflow
async def place_order(
    ctx: WorkflowContext, order_id: str, items: list[str], amount: int, address: str
) -> dict[str, Any]:
    try:
        async with Saga(ctx) as saga:
            reservation = await ctx.call(reserve_inventory, order_id, items)
            saga.add(release_inventory, reservation)
            charge = await ctx.call(charge_payment, order_id, amount)
            saga.add(refund_payment, charge["id"], amount)
            tracking = await ctx.call(ship_order, order_id, address)
    except StepFailed as failed:  # the saga has compensated before re-raising
        reason = f"{failed.error.type}: {failed.error.message}"
        return {"order": order_id, "status": "cancelled", "reason": reason}
    return {"order": order_id, "status": "shipped", "tracking": tracking}


ORDERS = {
    "o-1": (["book", "lamp"], 120, "1 Main St"),
    "o-2": (["chair"], 80, "nowhere"),
}


def main(path: str) -> dict[str, Any]:
    effects.clear()
    results: dict[str, Any] = {}
    with ActorSystem.open(path, clock=ManualClock()) as system:
        for order_id, (items, amount, address) in ORDERS.items():
            print(f"order {order_id}:")
            ref = system.spawn(
                place_order, order_id, items, amount, address, id=f"order-{order_id}"
            )
            results[order_id] = ref.result(timeout=10)
            print(f"  -> {results[order_id]}")
    print(f"result: {results}")
    return results


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="chronik-"))
