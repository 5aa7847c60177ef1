"""User onboarding: create the account, wait an hour, send a follow-up.

Run: python examples/onboarding.py [journal-dir]

The hour is a durable timer. The script closes the system while the run sleeps
(as a restarted process would), reopens the same journal, and only then lets the
hour pass: the run resumes by replaying its history, so the account is created
once, never twice, and the follow-up goes out after the reopen.

The clock is a ManualClock, so the hour passes in an instant.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any

from actors import ActorSystem, ManualClock, WorkflowContext, activity, workflow

effects: list[str] = []  # what the outside world saw, in order


def _effect(line: str) -> None:
    effects.append(line)
    print(f"  {line}")


@activity
def create_account(user_id: str, email: str) -> dict[str, Any]:
    _effect(f"create account {user_id} <{email}>")
    return {"account": f"acct-{user_id}", "email": email}


@activity
def send_follow_up(email: str, subject: str) -> str:
    _effect(f"email {email}: {subject!r}")
    return f"msg-{email}"


@workflow
async def onboard(ctx: WorkflowContext, user_id: str, email: str) -> dict[str, Any]:
    account = await ctx.call(create_account, user_id, email)
    signed_up = ctx.now()
    await ctx.sleep("1h")
    message = await ctx.call(send_follow_up, email, "How is your first hour going?")
    waited = (ctx.now() - signed_up).total_seconds()
    return {"account": account["account"], "follow_up": message, "waited_s": waited}


def main(path: str) -> dict[str, Any]:
    effects.clear()
    clock = ManualClock()
    with ActorSystem.open(path, clock=clock) as system:
        print("first process:")
        system.spawn(onboard, "u-1", "ada@example.com", id="onboard-u-1")
        clock.wait_for_timers(1)  # the run reached its one-hour sleep
        print("  closing while the run sleeps")
    with ActorSystem.open(path, clock=clock) as system:
        print("reopened:")
        clock.wait_for_timers(1)  # replay rebuilt the pending timer
        clock.advance("1h")
        result: dict[str, Any] = system.ref("onboard-u-1").result(timeout=10)
    print(f"result: {result}")
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="chronik-"))
