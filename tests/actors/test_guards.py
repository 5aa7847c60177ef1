"""Correctness the user can't get wrong: a command made and never awaited fails
the run, and so does a call a replay cannot repeat made while the workflow's
code runs (live and on replay); ``@workflow(guard=, allow=)`` lets them through."""

from __future__ import annotations

import gc
import logging
import pickle
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from actors import (
    ActorSystem,
    GuardSettingError,
    History,
    ManualClock,
    NondeterministicCallError,
    Replayer,
    ReplayStatus,
    RunCancelledError,
    UnawaitedCommandError,
    UnknownWorkflowError,
    WorkflowContext,
    WorkflowFailedError,
    workflow,
)
from actors._definitions import resolve_workflow
from actors._guard import Guard
from actors._history_file import read_histories
from actors._instance import WorkflowInstance
from aggregates import ErrorInfo
from tests.actors import _guard_workflows as flows
from tests.cli.conftest import chronik
from tests.replay._support import wait_for as wait_until

FLOWS_FILE = flows.__file__


def line_of(marker: str) -> str:
    """``file:line`` of the line of the workflows module holding ``marker``."""
    lines = Path(FLOWS_FILE).read_text().splitlines()
    (number,) = [i for i, line in enumerate(lines, 1) if marker in line]
    return f"{FLOWS_FILE}:{number}"


def failure_of(system: ActorSystem, definition: Any, *args: Any, id: str) -> ErrorInfo:
    with pytest.raises(WorkflowFailedError) as failed:
        system.spawn(definition, *args, id=id).result(timeout=10)
    return failed.value.error


# -- calls a replay cannot repeat ----------------------------------------------------


@pytest.mark.parametrize("case", [*flows.FORBIDDEN, "asyncio.sleep"])
def test_each_forbidden_call_in_workflow_code_fails_the_run_naming_it_and_the_fix(
    system: ActorSystem, case: str
) -> None:
    error = failure_of(system, flows.calls_forbidden, case, id=f"forbidden-{case}")
    assert error.type == "NondeterministicCallError"
    if case == "asyncio.sleep":
        name, fix = "asyncio.sleep", "await ctx.sleep(...)"
    else:
        _, name, fix = flows.FORBIDDEN[case]
    assert f"called {name} at {FLOWS_FILE}:" in error.message
    assert fix in error.message
    assert "workflow 'forbidden-" in error.message
    assert f"@workflow(allow=({name!r},))" in error.message


def test_the_error_is_raised_in_the_workflow_code_at_the_call() -> None:
    guard = Guard("wf-1", "raise", frozenset())

    async def code() -> None:
        time.time()

    coroutine = code()
    assert guard.enter(coroutine.cr_frame)
    try:
        with pytest.raises(NondeterministicCallError) as raised:
            coroutine.send(None)
    finally:
        guard.exit()
    assert raised.value.call == "time.time"
    assert raised.value.workflow_id == "wf-1"
    assert guard.error is raised.value


def test_workflow_code_that_catches_the_error_still_fails_and_issues_nothing_more(
    system: ActorSystem,
) -> None:
    flows.executed.clear()
    error = failure_of(system, flows.catches_it, id="catches")
    assert error.type == "NondeterministicCallError"
    assert "time.time" in error.message
    assert flows.executed == []
    assert system.history("catches").next_seq == 1  # no step was scheduled


def test_the_same_calls_in_a_sync_step_and_in_an_async_step_are_fine(
    system: ActorSystem,
) -> None:
    assert system.spawn(flows.steps_do_it, id="steps").result(timeout=10) == [9, 9]


def test_the_same_calls_on_another_thread_while_workflow_code_runs_are_fine(
    system: ActorSystem,
) -> None:
    running, done = threading.Event(), threading.Event()
    flows.THREAD_EVENTS["other"] = (running, done)
    seen: list[Any] = []

    def other_thread() -> None:
        assert running.wait(10.0)  # the workflow's code runs, guarded, now
        seen.extend([time.time(), random.random(), uuid.uuid4()])
        with open(__file__) as source:
            seen.append(source.readline())
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    ref = system.spawn(flows.waits_for_a_thread, "other", id="other-thread")
    assert ref.result(timeout=10) is True
    thread.join(5.0)
    assert len(seen) == 4


def test_ctx_now_uuid4_random_and_a_seeded_random_still_work(
    system: ActorSystem, clock: ManualClock
) -> None:
    now, made, number, seeded = system.spawn(flows.recorded_values, id="v").result(
        timeout=10
    )
    assert now == clock.now()
    assert isinstance(made, uuid.UUID)
    assert 0.0 <= number < 1.0
    assert seeded == random.Random(7).randint(1, 6)


def test_logging_a_traceback_and_printing_in_workflow_code_keep_working(
    system: ActorSystem,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with caplog.at_level(logging.WARNING, logger="tests.guards"):
        assert system.spawn(flows.logs_and_prints, id="logs").result(timeout=10)
    messages = [record.getMessage() for record in caplog.records]
    assert "a warning from workflow code" in messages
    assert "an exception from workflow code" in messages
    assert "shown with its traceback" in caplog.text
    assert "printed from workflow code" in capsys.readouterr().out


def test_gc_callbacks_and_finalisers_that_read_the_clock_inside_workflow_code_are_fine(
    system: ActorSystem,
) -> None:
    ticks: list[float] = []

    def timed_gc(phase: str, info: dict[str, int]) -> None:
        ticks.append(time.perf_counter())

    gc.callbacks.append(timed_gc)
    try:
        ref = system.spawn(flows.collects_garbage, id="gc")
        assert ref.result(timeout=10) == "collected"
    finally:
        gc.callbacks.remove(timed_gc)
    assert ticks


def test_a_profile_function_set_before_is_called_meanwhile_and_put_back() -> None:
    events: list[str] = []

    def previous(frame: Any, event: str, arg: Any) -> None:
        events.append(event)

    guard = Guard("wf-1", "raise", frozenset())

    async def code() -> int:
        return len("abc")

    coroutine = code()
    sys.setprofile(previous)
    try:
        assert guard.enter(coroutine.cr_frame)
        with pytest.raises(StopIteration):
            coroutine.send(None)
        guard.exit()
        assert sys.getprofile() is previous
    finally:
        sys.setprofile(None)
    assert "c_call" in events  # len() was seen by the previous function


# -- the switch ------------------------------------------------------------------------


def test_guard_off_lets_every_call_through(system: ActorSystem) -> None:
    assert isinstance(system.spawn(flows.unguarded, id="off").result(timeout=10), float)


def test_guard_warn_completes_and_logs_once_per_run_and_call(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="chronik.actors"):
        assert system.spawn(flows.warned, id="warn").result(timeout=10) == "warned"
    warnings = [r.getMessage() for r in caplog.records if "called" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert any("time.time" in w and "ctx.now()" in w for w in warnings)
    assert any("random.random" in w and "ctx.random()" in w for w in warnings)


def test_allow_lets_through_the_calls_and_categories_it_names_and_no_others(
    system: ActorSystem,
) -> None:
    assert system.spawn(flows.allowed, False, id="ok").result(timeout=10) == "allowed"
    error = failure_of(system, flows.allowed, True, id="random")
    assert error.type == "NondeterministicCallError"
    assert "random.random" in error.message


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"guard": "loud"}, "'loud'"),
        ({"guard": None}, "None"),
        ({"allow": ("time.tiem",)}, "'time.tiem'"),
        ({"allow": 5}, "5"),
    ],
)
def test_a_bad_guard_or_allow_raises_a_value_error_naming_it_and_the_choices(
    options: dict[str, Any], named: str
) -> None:
    async def never_registered(ctx: WorkflowContext) -> None:
        return None

    with pytest.raises(GuardSettingError) as bad:
        workflow(**options)(never_registered)
    assert isinstance(bad.value, ValueError)
    message = str(bad.value)
    assert f"{named} is not one of" in message
    choices = "'raise', 'warn', 'off'" if "guard" in options else "'clock', 'random'"
    assert choices in message
    name = f"{__name__}:{never_registered.__qualname__}"
    with pytest.raises(UnknownWorkflowError):
        resolve_workflow(name)


# -- commands made and never awaited ---------------------------------------------------

UNAWAITED = {
    "call": "ctx.call(charge_card)",
    "sleep": "ctx.sleep(3600.0)",
    "receive": "ctx.receive('approval')",
    "spawn": f"ctx.spawn({flows.child.name})",
    "gather": "ctx.gather(ctx.call(charge_card), ctx.sleep(1.0))",
}


@pytest.mark.parametrize("kind", UNAWAITED)
def test_a_command_made_and_never_awaited_fails_the_run_naming_it_and_its_line(
    system: ActorSystem, kind: str
) -> None:
    flows.executed.clear()
    error = failure_of(system, flows.forgets, kind, id=f"forgets-{kind}")
    assert error.type == "UnawaitedCommandError"
    assert f"made {UNAWAITED[kind]} at {line_of(f'forgotten: {kind}')} " in (
        error.message
    )
    assert "never awaited it" in error.message
    assert "(the code returned)" in error.message
    assert flows.executed == []
    assert system.history(f"forgets-{kind}").next_seq == 1  # nothing was recorded


def test_a_command_never_awaited_before_the_code_raised_fails_with_both(
    system: ActorSystem,
) -> None:
    error = failure_of(system, flows.forgets_then_raises, id="forgets-raises")
    assert error.type == "UnawaitedCommandError"
    assert line_of("forgotten: then raises") in error.message
    assert "raised KeyError: 'boom' before awaiting it" in error.message


def test_commands_made_first_and_awaited_later_are_fine(system: ActorSystem) -> None:
    result = system.spawn(flows.awaits_later, id="later").result(timeout=10)
    assert result == [3, [4, None]]


def test_a_command_held_unawaited_when_the_run_is_cancelled_leaves_it_cancelled(
    system: ActorSystem,
) -> None:
    ref = system.spawn(flows.holds_a_receive, id="held")
    wait_until(lambda: system.history("held").next_seq == 2)  # asleep
    ref.cancel("no longer needed")
    with pytest.raises(RunCancelledError):
        ref.result(timeout=10)


def test_the_error_pickles_with_its_fields() -> None:
    error = UnawaitedCommandError("wf", "ctx.sleep(1.0)", "wf.py:3")
    again = pickle.loads(pickle.dumps(error))
    assert (again.workflow_id, again.command, again.location) == (
        "wf",
        "ctx.sleep(1.0)",
        "wf.py:3",
    )
    assert str(again) == str(error)


# -- replaying histories recorded before the checks ------------------------------------


@pytest.fixture
def unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runtime without either check, as runs were recorded before them."""
    monkeypatch.setattr(WorkflowInstance, "track", lambda self, request, where: None)
    monkeypatch.setattr(Guard, "enter", lambda self, top: False)


@pytest.fixture
def old_journal(path: str, unchecked: None, monkeypatch: pytest.MonkeyPatch) -> str:
    with ActorSystem.open(path, clock=ManualClock()) as system:
        for kind in ("call", "sleep"):
            ref = system.spawn(flows.forgets, kind, id=f"old-{kind}")
            assert ref.result(timeout=10) == "done"
        ref = system.spawn(flows.calls_forbidden, "time.time", id="old-clock")
        assert ref.result(timeout=10) == "done"
        assert system.spawn(flows.awaits_later, id="old-fine").result(timeout=10)
    monkeypatch.undo()  # the checks are back for the replay
    return path


def test_a_history_that_completed_with_a_command_never_awaited_does_not_replay(
    old_journal: str,
) -> None:
    report = Replayer().replay_journal(old_journal)
    results = {result.workflow_id: result for result in report.results}
    assert results["old-fine"].ok
    for kind in ("call", "sleep"):
        result = results[f"old-{kind}"]
        assert result.status is ReplayStatus.NON_DETERMINISTIC
        assert isinstance(result.error, UnawaitedCommandError)
        assert result.error.command == UNAWAITED[kind]
        assert result.error.location == line_of(f"forgotten: {kind}")
    clock = results["old-clock"]
    assert clock.status is ReplayStatus.NON_DETERMINISTIC
    assert isinstance(clock.error, NondeterministicCallError)
    assert clock.error.call == "time.time"


def test_a_history_that_failed_with_the_same_error_replays_fine(
    system: ActorSystem, path: str
) -> None:
    failure_of(system, flows.forgets, "call", id="new-call")
    assert Replayer().replay_journal(system, ["new-call"]).ok


@pytest.mark.multiprocess
def test_chronik_verify_reports_the_old_run_with_a_command_never_awaited(
    old_journal: str,
) -> None:
    done = chronik("-j", old_journal, "verify", "-m", "tests.actors._guard_workflows")
    assert done.code == 1, done
    assert "3 non-deterministic" in done.out
    problems = [line for line in done.out.splitlines() if line.startswith("- ")]
    (call,) = [line for line in problems if "old-call" in line]
    assert "ctx.call(charge_card)" in call
    assert "never awaited" in call
    (clock,) = [line for line in problems if "old-clock" in line]
    assert "time.time" in clock


# -- what it costs ---------------------------------------------------------------------


def _replay_seconds(history: Any, definition: Any, rounds: int) -> float:
    replayer = Replayer([definition])
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        assert replayer.replay(history).ok
        best = min(best, time.perf_counter() - started)
    return best


def test_the_guard_costs_little_on_a_hundred_sequential_steps(
    path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prints the figure (no timed assertion): a live run of 100 no-op steps,
    and a replay of its history (the coroutine driving alone), guard on and off."""
    off = workflow(flows.hundred_steps.fn, name="hundred-off", guard="off")
    live: dict[str, float] = {}
    with ActorSystem.open(path) as system:
        for label, definition in (("on", flows.hundred_steps), ("off", off)):
            for attempt in range(3):
                started = time.perf_counter()
                ref = system.spawn(definition, id=f"{label}-{attempt}")
                assert ref.result(timeout=60) == 100
                took = time.perf_counter() - started
                live[label] = min(live.get(label, took), took)
        guarded, unguarded = _history(system, "on-0"), _history(system, "off-0")
    replayed = {
        "on": _replay_seconds(guarded, flows.hundred_steps, 20),
        "off": _replay_seconds(unguarded, off, 20),
    }
    with capsys.disabled():
        print(
            f"\n100 sequential no-op steps: live {live['on'] * 1e3:.1f} ms guarded, "
            f"{live['off'] * 1e3:.1f} ms unguarded; replay "
            f"{replayed['on'] * 1e3:.2f} ms guarded, "
            f"{replayed['off'] * 1e3:.2f} ms unguarded "
            f"(+{(replayed['on'] / replayed['off'] - 1) * 100:.0f}%)"
        )


def _history(system: ActorSystem, workflow_id: str) -> History:
    ((_, history),) = read_histories(system, [workflow_id])
    assert isinstance(history, History)
    return history
