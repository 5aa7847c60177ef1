"""Multi-step approval: submit a request, then wait for two approvers' signals.

Run: python examples/approval.py [journal-dir]

After the submit step the workflow waits for "approval" signals, each wait
bounded by three days (``ctx.receive("approval", timeout="3d")``). Two distinct
approvers approving grants the request; any rejection rejects it at once; an
approver approving twice counts once. If three days pass without the next
signal, ``ReceiveTimeoutError`` is raised inside the workflow, which escalates
the request to a manager (a step) and ends with status ``"escalated"``.

The driver sends the signals with ``ref.send("approval", {...})``; the clock is
a ManualClock, so the three days pass in an instant.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any

from actors import (
    ActorSystem,
    ManualClock,
    ReceiveTimeoutError,
    WorkflowContext,
    activity,
    workflow,
)

REQUIRED = 2

effects: list[str] = []  # what the outside world saw, in order


def _effect(line: str) -> None:
    effects.append(line)
    print(f"  {line}")


@activity
def submit_request(request_id: str, amount: int) -> str:
    _effect(f"submit {request_id} for {amount}")
    return f"ticket-{request_id}"


@activity
def escalate(ticket: str, approvers: list[str]) -> str:
    _effect(f"escalate {ticket} to a manager (approved so far by {approvers})")
    return f"esc-{ticket}"


@activity
def notify(ticket: str, decision: str) -> None:
    _effect(f"notify requester: {ticket} {decision}")


@workflow
async def approve_request(
    ctx: WorkflowContext, request_id: str, amount: int
) -> dict[str, Any]:
    ticket = await ctx.call(submit_request, request_id, amount)
    approvers: list[str] = []
    while len(approvers) < REQUIRED:
        try:
            vote = await ctx.receive("approval", timeout="3d")
        except ReceiveTimeoutError:
            escalation = await ctx.call(escalate, ticket, approvers)
            return {"request": request_id, "status": "escalated", "to": escalation}
        if not vote["approved"]:
            await ctx.call(notify, ticket, f"rejected by {vote['approver']}")
            return {"request": request_id, "status": "rejected", "by": vote["approver"]}
        if vote["approver"] not in approvers:
            approvers.append(vote["approver"])
    await ctx.call(notify, ticket, "approved")
    return {"request": request_id, "status": "approved", "by": approvers}


def main(path: str) -> dict[str, Any]:
    clock = ManualClock()
    effects.clear()
    results: dict[str, Any] = {}
    with ActorSystem.open(path, clock=clock) as system:
        print("r-1: one approval, then three days of silence")
        late = system.spawn(approve_request, "r-1", 900, id="approval-r-1")
        clock.wait_for_timers(1)  # waiting on the first approval
        late.send("approval", {"approver": "alice", "approved": True})
        clock.advance("3d")  # the second approval never comes
        results["r-1"] = late.result(timeout=10)
        print(f"  -> {results['r-1']}")

        print("r-2: alice (twice) and bob approve")
        granted = system.spawn(approve_request, "r-2", 500, id="approval-r-2")
        for approver in ("alice", "alice", "bob"):
            granted.send("approval", {"approver": approver, "approved": True})
        results["r-2"] = granted.result(timeout=10)
        print(f"  -> {results['r-2']}")

        print("r-3: carol rejects")
        refused = system.spawn(approve_request, "r-3", 50_000, id="approval-r-3")
        refused.send("approval", {"approver": "carol", "approved": False})
        results["r-3"] = refused.result(timeout=10)
        print(f"  -> {results['r-3']}")
    print(f"result: {results}")
    return results


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="chronik-"))
