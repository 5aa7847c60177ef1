"""Workflows whose every count is known: what they do is what the tests expect."""

from __future__ import annotations

import logging

from actors import RetryPolicy, WorkflowContext, activity, workflow

QUICK_RETRY = RetryPolicy(max_attempts=3, initial_interval=1.0)


class FlakyError(Exception):
    """The first attempt of ``flaky`` fails with this."""


@activity(name="tests.observability.flaky", retry=QUICK_RETRY)
def flaky(item: str) -> str:
    if activity.info().attempt == 1:
        raise FlakyError(f"{item}: first attempt fails")
    return f"flaky-{item}"


@activity(name="tests.observability.steady")
def steady(item: str) -> str:
    return f"steady-{item}"


@activity(name="tests.observability.broken", retry=RetryPolicy(max_attempts=2))
def broken(item: str) -> str:
    raise FlakyError(f"{item}: every attempt fails")


@workflow(name="tests.observability.known")
async def known(ctx: WorkflowContext, item: str) -> list[str]:
    """Two steps (the first fails once, then succeeds), a one-hour timer, a
    signal: seqs 1 and 2 are steps, 3 the timer, 4 the receive."""
    first = await ctx.call(flaky, item)
    second = await ctx.call(steady, item)
    await ctx.sleep("1h")
    extra = await ctx.receive("go")
    return [first, second, str(extra)]


@workflow(name="tests.observability.doomed")
async def doomed(ctx: WorkflowContext, item: str) -> str:
    """One step whose both attempts fail: the run fails."""
    return str(await ctx.call(broken, item))


@workflow(name="tests.observability.patient")
async def patient(ctx: WorkflowContext) -> str:
    return str(await ctx.receive("never"))


@activity(name="tests.observability.log_inside")
def log_inside() -> None:
    logging.getLogger("tests.observability.steps").info("inside the step")


@workflow(name="tests.observability.logged")
async def logged(ctx: WorkflowContext) -> str:
    await ctx.call(log_inside)
    return "done"
