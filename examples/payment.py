"""A payment: charge the card, write a ledger entry, email a receipt.

Run: python examples/payment.py [journal-dir]

- The charge passes ``activity.info().idempotency_key`` to the (fake) gateway,
  which deduplicates on it: a retried or replayed charge never charges twice.
- If the ledger write fails for good, the workflow compensates with a refund and
  returns status ``"refunded"``.
- The receipt email is best effort (``ctx.call(..., best_effort=True)``): when it
  fails after its retries, the failure is recorded in history, the call gives
  ``None`` and the payment still completes with status ``"paid"``.

p-1 goes through; p-2's receipt bounces; p-3's ledger rejects the entry.
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
    StepFailed,
    WorkflowContext,
    activity,
    workflow,
)

effects: list[str] = []  # what the outside world saw, in order
gateway: dict[str, str] = {}  # the gateway's charges by idempotency key


def _effect(line: str) -> None:
    effects.append(line)
    print(f"  {line}")


class LedgerRejectedError(Exception):
    """The ledger refuses the entry: retrying cannot help."""


@activity(retry=RetryPolicy(max_attempts=3, initial_interval=0.5))
def charge_card(payment_id: str, card: str, amount: int) -> str:
    key = activity.info().idempotency_key
    if key not in gateway:  # the gateway charges once per key
        gateway[key] = f"ch-{payment_id}"
        _effect(f"charge {amount} to {card} (idempotency key {key})")
    return gateway[key]


@activity(retry=RetryPolicy(non_retryable=[LedgerRejectedError]))
def write_ledger(payment_id: str, charge_id: str, amount: int) -> str:
    if amount > 10_000:
        _effect(f"ledger rejects {charge_id}: {amount} is over the limit")
        raise LedgerRejectedError(f"{amount} is over the ledger's limit")
    _effect(f"ledger entry for {charge_id}: {amount}")
    return f"le-{payment_id}"


@activity
def refund_card(charge_id: str, amount: int) -> str:
    _effect(f"refund {amount} on {charge_id}")
    return f"rf-{charge_id}"


@activity(retry=RetryPolicy(max_attempts=2, initial_interval=1.0))
def send_receipt(email: str, charge_id: str) -> str:
    if email.endswith(".invalid"):
        _effect(f"receipt to {email} bounced")
        raise ConnectionError(f"mail server refused {email}")
    _effect(f"receipt for {charge_id} sent to {email}")
    return f"mail-{charge_id}"


@workflow
async def pay(
    ctx: WorkflowContext, payment_id: str, card: str, amount: int, email: str
) -> dict[str, Any]:
    charge = await ctx.call(charge_card, payment_id, card, amount)
    try:
        entry = await ctx.call(write_ledger, payment_id, charge, amount)
    except StepFailed as failed:
        refund = await ctx.call(refund_card, charge, amount)
        reason = f"{failed.error.type}: {failed.error.message}"
        return {
            "payment": payment_id,
            "status": "refunded",
            "refund": refund,
            "reason": reason,
        }
    receipt = await ctx.call(send_receipt, email, charge, best_effort=True)
    return {
        "payment": payment_id,
        "status": "paid",
        "ledger": entry,
        "receipt": receipt,
    }


PAYMENTS = {
    "p-1": ("4242", 250, "ada@example.com"),
    "p-2": ("4000", 990, "bob@mail.invalid"),
    "p-3": ("5555", 25_000, "cy@example.com"),
}


def main(path: str) -> dict[str, Any]:
    effects.clear()
    gateway.clear()
    results: dict[str, Any] = {}
    with ActorSystem.open(path, clock=ManualClock()) as system:
        for payment_id, (card, amount, email) in PAYMENTS.items():
            print(f"payment {payment_id}:")
            ref = system.spawn(
                pay, payment_id, card, amount, email, id=f"payment-{payment_id}"
            )
            results[payment_id] = ref.result(timeout=10)
            print(f"  -> {results[payment_id]}")
    print(f"result: {results}")
    return results


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="chronik-"))
