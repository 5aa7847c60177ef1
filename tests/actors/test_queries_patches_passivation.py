"""Queries, patches, passivation and snapshots."""

from __future__ import annotations

import time
from typing import Any

import pytest

from actors import (
    ActorSystem,
    ManualClock,
    QueryError,
    RunStatus,
    UnknownQueryError,
    WorkflowContext,
    WorkflowFailedError,
    activity,
    workflow,
)
from aggregates import CommandKind, NonDeterminismError, RunFinishedError

fees: list[str] = []


@activity
def charge(amount: int) -> int:
    return amount


@activity
def add_fee(amount: int) -> int:
    fees.append(f"fee on {amount}")
    return 1


@workflow
async def tracked(ctx: WorkflowContext, items: int) -> int:
    progress = {"done": 0, "of": items}
    ctx.set_query("progress", lambda: dict(progress))
    ctx.set_query("times", lambda factor: progress["done"] * factor)
    ctx.set_query("broken", lambda: 1 / 0)
    for _ in range(items):
        await ctx.receive("item")
        progress["done"] += 1
    return int(progress["done"])


def test_a_query_reads_the_state_of_a_running_run(journal_system: ActorSystem) -> None:
    ref = journal_system.spawn(tracked, 3, id="query-1")
    ref.send("item")
    assert ref.query("progress") == {"done": 1, "of": 3}
    assert ref.query("times", 10) == 10
    with pytest.raises(UnknownQueryError, match="'progress'"):
        ref.query("nope")
    with pytest.raises(QueryError, match="ZeroDivisionError"):
        ref.query("broken")
    assert ref.status() is RunStatus.RUNNING  # a failing query harms nothing


def test_a_finished_run_answers_queries_with_its_final_state(
    journal_system: ActorSystem,
) -> None:
    ref = journal_system.spawn(tracked, 1, id="query-2")
    ref.send("item")
    assert ref.result(timeout=5) == 1
    assert ref.query("progress") == {"done": 1, "of": 1}
    assert len(journal_system.history("query-2").commands) == 1  # replay wrote nothing


def test_a_passive_run_is_activated_by_a_signal_or_a_query(
    journal_location: str,
) -> None:
    with ActorSystem.open(journal_location, idle_timeout=0.05) as system:
        ref = system.spawn(tracked, 2, id="passive-1")
        ref.send("item")
        _wait_for(lambda: system.live_runs == 0)
        assert system.passivations == 1
        assert ref.query("progress") == {"done": 1, "of": 2}  # replayed
        _wait_for(lambda: system.live_runs == 0)
        ref.send("item")
        assert ref.result(timeout=5) == 2
        assert system.passivations == 2


def test_a_passive_run_wakes_for_its_timer(journal_location: str) -> None:
    clock = ManualClock()

    @workflow(name="tests.passive.sleeper")
    async def sleeper(ctx: WorkflowContext) -> str:
        await ctx.sleep("1d")
        return "woke"

    with ActorSystem.open(journal_location, clock=clock, idle_timeout=0.05) as system:
        ref = system.spawn(sleeper, id="passive-2")
        clock.wait_for_timers(1)
        _wait_for(lambda: system.live_runs == 0)
        clock.advance("1d")
        assert ref.result(timeout=5) == "woke"


def test_resident_runs_grow_with_active_runs_not_with_all_runs(
    journal_location: str,
) -> None:
    with ActorSystem.open(journal_location, idle_timeout=0.05) as system:
        refs = [system.spawn(tracked, 1, id=f"many-{i}") for i in range(50)]
        _wait_for(lambda: system.live_runs == 0)
        refs[7].send("item")
        assert refs[7].result(timeout=5) == 1
        assert system.live_runs == 0
        assert [r.status() for r in refs].count(RunStatus.RUNNING) == 49


@workflow(name="tests.patches.order")
async def before_patch(ctx: WorkflowContext) -> int:
    total = await ctx.call(charge, 100)
    await ctx.receive("ship")
    return int(total)


async def _patched_order(ctx: WorkflowContext) -> int:
    total = await ctx.call(charge, 100)
    if ctx.patched("fee-step"):
        total += await ctx.call(add_fee, total)
    await ctx.receive("ship")
    return int(total)


def test_a_patch_keeps_old_runs_on_the_old_path_and_new_runs_on_the_new(
    journal_location: str, clock: ManualClock
) -> None:
    fees.clear()
    with ActorSystem.open(journal_location, clock=clock) as system:
        system.spawn(before_patch, id="old-order")
        _wait_for(lambda: system.history("old-order").next_seq == 3)
    # The ship receive comes after the patch point: replay sees a receive there.
    workflow(name="tests.patches.order")(_patched_order)
    with ActorSystem.open(journal_location, clock=clock) as system:
        old = system.ref("old-order")
        old.send("ship")
        assert old.result(timeout=5) == 100
        new = system.spawn("tests.patches.order", id="new-order")
        new.send("ship")
        assert new.result(timeout=5) == 101
        kinds = [c.kind for c in system.history("new-order").commands]
    assert kinds[:3] == [CommandKind.STEP, CommandKind.PATCH, CommandKind.STEP]
    assert fees == ["fee on 100"]


def test_removing_a_patch_check_from_code_is_non_determinism(
    journal_location: str, clock: ManualClock
) -> None:
    workflow(name="tests.patches.order")(_patched_order)
    with ActorSystem.open(journal_location, clock=clock) as system:
        system.spawn("tests.patches.order", id="patched-order")
        _wait_for(lambda: system.history("patched-order").next_seq == 5)
    workflow(name="tests.patches.order")(before_patch.fn)
    with ActorSystem.open(journal_location, clock=clock) as system:
        ref = system.ref("patched-order")
        with pytest.raises(RunFinishedError):  # the run fails as it replays
            ref.send("ship")
        with pytest.raises(WorkflowFailedError) as raised:
            ref.result(timeout=5)
    assert isinstance(raised.value.__cause__, NonDeterminismError)


@workflow
async def long_history(ctx: WorkflowContext, signals: int) -> int:
    total = 0
    for _ in range(signals):
        total += int(await ctx.receive("n"))
    return total


def test_snapshots_bound_the_events_read_to_rebuild_a_long_run(
    journal_location: str,
) -> None:
    with ActorSystem.open(journal_location, snapshot_every=20) as system:
        ref = system.spawn(long_history, 100, id="long-1")
        for _ in range(60):
            ref.send("n", 1)
        snapshots = list(system._app.snapshots.get("long-1"))  # type: ignore[union-attr]
        assert snapshots, "no snapshot was taken"
        assert snapshots[-1].originator_version >= 100
        rebuilt = system.history("long-1")
        assert len(rebuilt.commands) == 61
        assert rebuilt.status is RunStatus.RUNNING
        for _ in range(40):
            ref.send("n", 1)
        assert ref.result(timeout=5) == 100


@workflow
async def long_history_then_nap(ctx: WorkflowContext, signals: int) -> int:
    total = await long_history.fn(ctx, signals)
    await ctx.sleep(0.2)
    return total


def test_a_reopened_journal_rebuilds_its_runs_from_their_last_snapshots(
    journal_location: str,
) -> None:
    """Opening reads many unfinished runs at once (a snapshot and the events
    after it, each): they resume where they were, a timer included."""
    with ActorSystem.open(journal_location, snapshot_every=20) as system:
        waiting = system.spawn(long_history, 100, id="long-waiting")
        napping = system.spawn(long_history_then_nap, 30, id="long-napping")
        short = system.spawn(long_history, 2, id="short-waiting")
        for _ in range(60):
            waiting.send("n", 1)
        for _ in range(30):
            napping.send("n", 2)
        short.send("n", 5)
        expected = {
            run_id: system.history(run_id)
            for run_id in ("long-waiting", "long-napping", "short-waiting")
        }
    with ActorSystem.open(journal_location, snapshot_every=20) as system:
        for run_id, before in expected.items():
            after = system.history(run_id)
            assert (after.version, after.status) == (before.version, before.status)
            assert after.commands == before.commands
        assert system.ref("long-napping").result(timeout=5) == 60  # its timer fired
        for _ in range(40):
            system.ref("long-waiting").send("n", 1)
        assert system.ref("long-waiting").result(timeout=5) == 100
        system.ref("short-waiting").send("n", 5)
        assert system.ref("short-waiting").result(timeout=5) == 10


def _wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)
