"""Replaying journals and histories against current code: what passes, what is
reported, and that a replay writes nothing and runs no step."""

from __future__ import annotations

import contextlib
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actors import (
    ActorSystem,
    ManualClock,
    NonDeterminismError,
    NonDeterministicEndError,
    Replayer,
    ReplayStatus,
    RunEnd,
    RunStatus,
    UnknownRunError,
    UnknownWorkflowError,
    WorkflowContext,
    WorkflowDefinition,
    export_history,
)
from aggregates import Command, CommandKind, ErrorInfo, WorkflowRun
from tests.journal._subprocess import Child
from tests.replay import _workflows as flows
from tests.replay._support import history_of, last_notification, next_seq, wait_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _retired(ctx: WorkflowContext) -> str:
    return "gone"


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Runs finished, asleep, waiting on a signal, a parent waiting on its child,
    and one of a workflow the code no longer has (never registered)."""
    path = str(tmp_path_factory.mktemp("replay") / "journal")
    clock = ManualClock()
    with ActorSystem.open(path, clock=clock, idle_timeout=None) as system:
        system.spawn(flows.two_steps, "o-1", id="finished").result(timeout=5)
        system.spawn(flows.sleeps, id="sleeping")
        system.spawn(flows.waits, 2, id="waiting").send("go", {"n": 1})
        system.spawn(flows.parent, id="parent")
        wait_for(lambda: next_seq(system, "parent/2") == 2)  # the child
        retired = WorkflowDefinition(_retired, "tests.replay.retired")
        system.spawn(retired, id="retired").result(timeout=5)
        wait_for(lambda: next_seq(system, "sleeping") == 3)
    return path


def statuses(report: Any) -> dict[str, ReplayStatus]:
    return {result.workflow_id: result.status for result in report.results}


def test_a_journal_of_finished_sleeping_waiting_and_parent_child_runs_replays_clean(
    journal: str,
) -> None:
    known = ["finished", "sleeping", "waiting", "parent", "parent/2"]
    report = Replayer().replay_journal(journal, known)
    report.check()
    assert statuses(report) == dict.fromkeys(known, ReplayStatus.OK)
    assert report.summary() == "replayed 5 runs: 5 ok, 0 non-deterministic, 0 error"


def test_an_unknown_workflow_is_reported_for_its_run_and_the_others_still_replay(
    journal: str,
) -> None:
    report = Replayer().replay_journal(journal)
    assert [r.workflow_id for r in report.results] == [
        "finished",
        "sleeping",
        "waiting",
        "parent",
        "parent/2",
        "retired",
    ]
    (failure,) = report.failures
    assert (failure.workflow_id, failure.status) == ("retired", ReplayStatus.ERROR)
    assert isinstance(failure.error, UnknownWorkflowError)
    assert failure.error.name == "tests.replay.retired"
    assert report.summary().splitlines() == [
        "replayed 6 runs: 5 ok, 0 non-deterministic, 1 error",
        f"- retired (tests.replay.retired): error: UnknownWorkflowError: "
        f"{failure.error}",
    ]
    with pytest.raises(UnknownWorkflowError, match=r"tests\.replay\.retired"):
        report.check()


def test_a_run_id_the_journal_does_not_hold_is_reported_for_that_id(
    journal: str,
) -> None:
    report = Replayer().replay_journal(journal, ["finished", "no-such-run"])
    assert statuses(report) == {
        "finished": ReplayStatus.OK,
        "no-such-run": ReplayStatus.ERROR,
    }
    assert isinstance(report.results[1].error, UnknownRunError)


def test_a_replay_writes_nothing_to_the_journal_and_runs_no_step(journal: str) -> None:
    before = last_notification(journal)
    flows.executed.clear()
    Replayer().replay_journal(journal)
    assert last_notification(journal) == before
    assert flows.executed == []


def test_replay_stops_at_an_open_step_and_at_code_past_an_unfinished_history() -> None:
    run = WorkflowRun.start("open-step", flows.sleeps.name, at=T0)
    run.schedule_step(1, "work", ["before the nap"], at=T0)  # in flight
    open_step = history_of(run)
    fresh = WorkflowRun.start("fresh", flows.sleeps.name, at=T0)  # nothing issued
    just_started = history_of(fresh)
    flows.executed.clear()
    report = Replayer([flows.sleeps]).replay_all([open_step, just_started])
    report.check()
    assert flows.executed == []


def test_a_run_recorded_before_a_patched_change_replays_against_the_patched_code(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "journal")
    with ActorSystem.open(path, clock=ManualClock(), idle_timeout=None) as system:
        system.spawn(flows.fee_v1, 10, id="old-done").send("confirm")
        system.spawn(flows.fee_v1, 20, id="old-waiting")
        system.spawn(flows.fee_v2_patched, 30, id="new-done").send("confirm")
        for workflow_id in ("old-done", "new-done"):
            system.ref(workflow_id).result(timeout=5)
        wait_for(lambda: next_seq(system, "old-waiting") == 3)

    patched = Replayer([flows.fee_v2_patched]).replay_journal(path)
    patched.check()
    assert patched.count(ReplayStatus.OK) == 3

    unguarded = Replayer([flows.fee_v2_unguarded]).replay_journal(path)
    assert statuses(unguarded) == {
        "old-done": ReplayStatus.NON_DETERMINISTIC,
        "old-waiting": ReplayStatus.NON_DETERMINISTIC,
        "new-done": ReplayStatus.NON_DETERMINISTIC,
    }
    error = unguarded.results[0].error
    assert isinstance(error, NonDeterminismError)
    assert (error.workflow_id, error.seq) == ("old-done", 2)
    assert error.recorded == Command(CommandKind.RECEIVE, "confirm")
    assert error.requested == Command(CommandKind.STEP, "audit")
    recorded_patch = unguarded.results[2].error
    assert isinstance(recorded_patch, NonDeterminismError)
    assert recorded_patch.recorded == Command(CommandKind.PATCH, "add-fee")


# -- how a run ends -------------------------------------------------------------------


async def _three_steps(ctx: WorkflowContext, order: str) -> list[Any]:
    first = await ctx.call(flows.work, f"{order} 1")
    stamp = ctx.now()
    second = await ctx.call(flows.work, f"{order} 2")
    await ctx.call(flows.work, f"{order} 3")
    return [first, second, stamp.isoformat()]


async def _one_step(ctx: WorkflowContext, order: str) -> str:
    result: str = await ctx.call(flows.work, f"{order} 1")
    return result


async def _fails_at_the_end(ctx: WorkflowContext, order: str) -> None:
    await ctx.call(flows.work, f"{order} 1")
    ctx.now()
    await ctx.call(flows.work, f"{order} 2")
    raise KeyError(order)


def replay_finished_as(journal: str, fn: Any) -> Any:
    history = export_history(journal, "finished")
    definition = WorkflowDefinition(fn, flows.two_steps.name)
    result = Replayer([definition]).replay(history)
    assert result.status is ReplayStatus.NON_DETERMINISTIC
    assert isinstance(result.error, NonDeterministicEndError)
    assert result.error.workflow_id == "finished"
    return result.error


def test_code_asking_for_a_step_past_the_end_of_a_finished_history_is_reported(
    journal: str,
) -> None:
    error = replay_finished_as(journal, _three_steps)
    assert error.seq == 4
    assert error.recorded == RunEnd(RunStatus.COMPLETED)
    assert error.requested == Command(CommandKind.STEP, "work")
    assert str(error) == (
        "workflow 'finished' is not deterministic at seq 4: its history holds the "
        "end of the run (completed), but the code now asks for step 'work'. The "
        "workflow code changed since this run was recorded: restore the code it "
        "ran with, or guard the change with ctx.patched(...) so that runs "
        "recorded before it keep their old path"
    )


def test_code_ending_before_the_last_recorded_command_is_reported_at_that_command(
    journal: str,
) -> None:
    error = replay_finished_as(journal, _one_step)
    assert error.seq == 2
    assert error.recorded == Command(CommandKind.VALUE, "now")
    assert error.requested == RunEnd(RunStatus.COMPLETED)
    assert "its history holds value 'now', but the code now asks for the end of " in (
        str(error)
    )


def test_code_failing_where_its_history_completed_is_reported_at_the_end(
    journal: str,
) -> None:
    error = replay_finished_as(journal, _fails_at_the_end)
    assert error.seq == 4
    assert error.recorded == RunEnd(RunStatus.COMPLETED)
    assert error.requested == RunEnd(
        RunStatus.FAILED, ErrorInfo("KeyError", "'o-1'", "builtins")
    )
    assert "the end of the run (failed: KeyError: 'o-1')" in str(error)


def test_code_asking_more_of_an_unfinished_history_is_not_a_mismatch(
    journal: str,
) -> None:
    history = export_history(journal, "waiting")  # one of two signals received
    three_rounds = WorkflowDefinition(
        lambda ctx, rounds: flows.waits.fn(ctx, rounds + 1), flows.waits.name
    )
    assert Replayer([three_rounds]).replay(history).ok


def test_replaying_through_an_open_system_reads_its_journal_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "journal")
    with ActorSystem.open(path, clock=ManualClock(), idle_timeout=None) as system:
        ref = system.spawn(flows.waits, 1, id="open-1")
        wait_for(lambda: next_seq(system, "open-1") == 2)
        before = last_notification(path)
        report = Replayer().replay_journal(system)
        report.check()
        assert statuses(report) == {"open-1": ReplayStatus.OK}
        assert last_notification(path) == before
        ref.send("go", "still works")
        assert ref.result(timeout=5) == ["still works"]


@pytest.mark.multiprocess
def test_a_journal_another_process_keeps_writing_to_replays_read_only(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "journal")
    with Child("tests.replay._holder", path) as holder:
        holder.expect("ready")
        first = Replayer().replay_journal(path)
        second = Replayer().replay_journal(path)
        holder.send("stop")
        stopped = holder.read_line()
        assert holder.wait() == 0
    first.check()
    second.check()
    assert 1 <= len(first.results) <= len(second.results)
    written = int(stopped.removeprefix("stopped after "))
    assert len(Replayer().replay_journal(path).results) == written


def test_cancelled_failed_and_busy_runs_replay_clean(tmp_path: Path) -> None:
    """Cancellation thrown where history says, a failed step that fails the run,
    a detached child, gather with an error, a receive that timed out, random."""
    path = str(tmp_path / "journal")
    clock = ManualClock()
    with ActorSystem.open(path, clock=clock, idle_timeout=None) as system:
        cancelled = system.spawn(flows.cancellable, id="cancelled")
        wait_for(lambda: next_seq(system, "cancelled") == 3)
        cancelled.cancel("changed my mind")
        failed = system.spawn(flows.fails, id="failed")
        busy = system.spawn(flows.busy, id="busy")
        wait_for(lambda: next_seq(system, "busy") == 5)  # gathered, the timer due
        clock.advance("1m")
        wait_for(lambda: next_seq(system, "busy") == 6)  # a receive until 1h
        clock.advance("1h")
        for ref in (cancelled, failed, busy):
            with contextlib.suppress(Exception):
                ref.result(timeout=5)
        assert [ref.status() for ref in (cancelled, failed, busy)] == [
            RunStatus.CANCELLED,
            RunStatus.FAILED,
            RunStatus.COMPLETED,
        ]
    report = Replayer().replay_journal(path)
    report.check()
    assert statuses(report) == {
        "cancelled": ReplayStatus.OK,
        "failed": ReplayStatus.OK,
        "busy": ReplayStatus.OK,
        "busy/1": ReplayStatus.OK,  # the detached child, still waiting
    }


def test_code_that_no_longer_takes_the_recorded_arguments_is_an_error_of_its_run(
    journal: str,
) -> None:
    history = export_history(journal, "finished")  # two_steps("o-1")
    no_arguments = WorkflowDefinition(_retired, flows.two_steps.name)
    result = Replayer([no_arguments]).replay(history)
    assert result.status is ReplayStatus.ERROR
    assert isinstance(result.error, TypeError)
    assert "positional argument" in str(result.error)
    assert str(result).startswith(
        "finished (tests.replay.two_steps): error: TypeError: "
    )


def test_a_non_deterministic_end_error_pickles_with_its_data() -> None:
    error = NonDeterministicEndError(
        "o-1", 4, RunEnd(RunStatus.COMPLETED), Command(CommandKind.STEP, "ship")
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.workflow_id, copy.seq, copy.recorded, copy.requested) == (
        "o-1",
        4,
        RunEnd(RunStatus.COMPLETED),
        Command(CommandKind.STEP, "ship"),
    )
    assert str(copy) == str(error)
    waits = NonDeterministicEndError("o-1", 4, RunEnd(RunStatus.CANCELLED), None)
    assert (
        "its history holds the end of the run (cancelled), but the code now "
        "waits for an outcome its history does not hold."
    ) in str(waits)
