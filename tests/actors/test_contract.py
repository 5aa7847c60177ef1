"""The contract of DESIGN.md §5, points 1 to 5, each proven across a crash.

The crash modes: an exception inside a run's actor (``CommitFault`` makes one
commit raise: history stays intact; these systems run with
``max_run_restarts=0``, so the actor breaks off rather than being replaced by its
supervisor, and the next message or the next open resumes the run by replay;
``test_supervised_runs.py`` proves the supervisor's restarts), ``close()`` while
a step is in flight, a system abandoned (never closed) while a fresh one opens
the same journal, and a real SIGKILL of a process.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

import actors._router
from actors import (
    ActorSystem,
    ManualClock,
    NonDeterminismError,
    ResultTimeoutError,
    RetryPolicy,
    RunConflictError,
    RunRef,
    RunStatus,
    RunUnavailableError,
    UnknownQueryError,
    UnknownRunError,
    UnknownWorkflowError,
    WorkflowContext,
    WorkflowFailedError,
    _definitions,
    activity,
    workflow,
)
from actors._run_actor import RunActor
from aggregates import Command, CommandKind, RunFinishedError, WorkflowRun
from journal import (
    EventConflictError,
    FencedOutError,
    JournalFullError,
    JournalPathError,
    JournalReader,
    UnencodableValueError,
    open_reader,
)
from tests.actors._contract_faults import (
    CommitFault,
    InjectedCrash,
    event_names,
    has_event,
    last_notification_id,
    wait_until,
    wait_until_closing,
)
from tests.actors._contract_workflows import (
    EXECUTIONS,
    approval,
    evolving,
    log_execution,
    pipeline,
    reserve,
)
from tests.actors._ownership_support import as_crashed

ROOT = Path(__file__).resolve().parents[2]

# Why some tests fail on PostgreSQL (library bugs; the marks are strict).
# -- steps and workflows of this module ---------------------------------------------


class Gate:
    """Holds one execution of a step until the test opens it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def pass_through(self) -> None:
        self.entered.set()
        assert self.opened.wait(5), "the test never opened the gate"


GATES: dict[int, Gate] = {}  # execution number (from 1, per step) -> its gate
_numbering = threading.Lock()


def _execution(step: str) -> int:
    """Log this execution of ``step``; its number, counted from 1 per step."""
    with _numbering:
        log_execution(step)
        return sum(1 for name, _, _ in EXECUTIONS if name == step)


@pytest.fixture
def system(journal_location: str, clock: ManualClock) -> Iterator[ActorSystem]:
    with ActorSystem.open(journal_location, clock=clock, max_run_restarts=0) as opened:
        yield opened


@pytest.fixture(autouse=True)
def _fresh_log() -> Iterator[None]:
    EXECUTIONS.clear()
    GATES.clear()
    yield
    for gate in GATES.values():
        gate.opened.set()  # never leave a step hanging


@activity(name="tests.contract.owned_step")
def owned_step(order: str) -> str:
    """Its result names the execution that made it, so a test sees which won."""
    number = _execution("owned_step")
    if number in GATES:
        GATES[number].pass_through()
    return f"{order}-by-execution-{number}"


@activity(name="tests.contract.gated_step")
def gated_step(value: str) -> str:
    number = _execution("gated_step")
    if number in GATES:
        GATES[number].pass_through()
    return value.upper()


@activity(
    name="tests.contract.shaky",
    retry=RetryPolicy(max_attempts=3, initial_interval=0.01),
)
def shaky(order: str) -> str:
    """Its first attempt fails (after its gate, if it has one)."""
    number = _execution("shaky")
    if activity.info().attempt == 1:
        if number in GATES:
            GATES[number].pass_through()
        raise ConnectionError(f"shaky {order}: first attempt fails")
    return f"ok-{order}"


@activity(name="tests.contract.alpha")
def alpha() -> str:
    _execution("alpha")
    return "a"


@activity(name="tests.contract.beta")
def beta() -> str:
    _execution("beta")
    return "b"


@workflow(name="tests.contract.owned")
async def owned(ctx: WorkflowContext, order: str) -> list[Any]:
    first = await ctx.call(owned_step, order)
    note = await ctx.receive("note")
    return [first, note]


@workflow(name="tests.contract.reserving")
async def reserving(ctx: WorkflowContext, order: str) -> list[Any]:
    reservation = await ctx.call(reserve, order)
    note = await ctx.receive("note")
    return [reservation, note]


@workflow(name="tests.contract.shaky-run")
async def shaky_run(ctx: WorkflowContext, order: str) -> str:
    return str(await ctx.call(shaky, order))


@workflow(name="tests.contract.gated-approval")
async def gated_approval(ctx: WorkflowContext, order: str) -> dict[str, Any]:
    decision = await ctx.receive("approve")
    shipment = await ctx.call(gated_step, f"{order}-{decision}")
    note = await ctx.receive("note")
    return {"shipment": shipment, "note": note}


@workflow(name="tests.contract.waiter")
async def waiter(ctx: WorkflowContext, blob: str = "") -> list[Any]:
    go = await ctx.receive("go")
    return [len(blob), go]


# -- helpers ---------------------------------------------------------------------


def stored(location: str, workflow_id: str) -> list[StoredEvent]:
    """The run's events as the journal at ``location`` (a directory or a
    PostgreSQL URL) holds them; it works while a system is open."""
    with open_reader(location) as reader:
        return list(reader.stream(workflow_id))


def _waiting(location: str, workflow_id: str) -> Callable[[], bool]:
    """Whether the run's history shows it waiting for a signal."""
    return lambda: "SignalAwaited" in event_names(stored(location, workflow_id))


def _recorded(system: ActorSystem, workflow_id: str, seq: int) -> Callable[[], bool]:
    """Whether the journal holds an outcome for the run's command ``seq``."""

    def check() -> bool:
        commands = system.history(workflow_id).commands
        return len(commands) >= seq and commands[seq - 1].outcome is not None

    return check


def _fenced_out(
    caplog: pytest.LogCaptureFixture, workflow_id: str
) -> FencedOutError | None:
    """The error with which a stale owner's commit of the run was refused, as
    its actor logged it on stopping."""
    for record in caplog.records:
        for arg in record.args or ():
            if isinstance(arg, FencedOutError) and workflow_id in str(arg):
                return arg
    return None


def _keys(step: str) -> list[str]:
    return [key for name, key, _ in EXECUTIONS if name == step]


def _run_crash_free(
    path: str, workflow: Any, args: tuple[Any, ...], signals: list[tuple[str, Any]]
) -> Any:
    """The result of one run of ``workflow`` on a fresh journal, without a crash."""
    clock = ManualClock()
    with ActorSystem.open(path, clock=clock, max_run_restarts=0) as system:
        ref = system.spawn(workflow, *args, id="crash-free")
        for topic, payload in signals:
            ref.send(topic, payload)
        return ref.result(timeout=5)


def _child(mode: str, journal: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.actors._contract_runner", mode, journal],
        cwd=ROOT,
        env=dict(os.environ, **env),
        stdout=subprocess.PIPE,
        text=True,
    )


def _wait_for_lines(
    counts: Path, child: subprocess.Popen[str], *wanted: str, timeout: float = 20
) -> None:
    """Wait until every line of ``wanted`` starts a line of ``counts``."""
    deadline = time.monotonic() + timeout
    while True:
        lines = counts.read_text().splitlines() if counts.exists() else []
        if all(any(line.startswith(w) for line in lines) for w in wanted):
            return
        assert time.monotonic() < deadline, f"the child never logged {wanted}"
        assert child.poll() is None, "the child exited early"
        time.sleep(0.01)


# == 1. A step's result is recorded exactly once; the step runs at least once, =====
# ==    handed the same idempotency key every time                                ==


def test_a_step_whose_outcome_commit_crashes_runs_again_with_the_same_key_and_is_recorded_once(  # noqa: E501
    system: ActorSystem, journal_location: str
) -> None:
    # 1 is the spawn; 2 records the failed first attempt as it fails (each
    # failed attempt is durable at once); 3 records the step's outcome.
    fault = CommitFault(system, at=3)
    ref = system.spawn(reserving, "o-1", id="reserving-o-1")
    with pytest.raises(RunUnavailableError, match="history is intact") as broke:
        ref.result(timeout=5)
    assert isinstance(broke.value.__cause__, InjectedCrash)
    assert event_names(stored(journal_location, "reserving-o-1")) == [
        "Started",
        "StepScheduled",
        "StepFailed",
    ]

    # The next message resumes the run by replay: the step runs again, from the
    # attempt after the last one recorded as failed.
    ref.send("note", "thanks", signal_id="note-1")
    assert ref.result(timeout=5) == ["res-o-1", "thanks"]
    key = "reserving-o-1/1"
    assert [("reserve", key, 1), ("reserve", key, 2), ("reserve", key, 2)] == (
        EXECUTIONS
    )
    step = system.history("reserving-o-1").commands[0]
    assert step.outcome is not None
    assert (step.name, step.attempts, step.outcome.value) == ("reserve", 1, "res-o-1")
    assert (
        event_names(stored(journal_location, "reserving-o-1")).count("StepCompleted")
        == 1
    )
    assert fault.fired.is_set()


def test_closing_while_a_step_retries_records_nothing_and_reopening_reruns_it_with_the_same_key(  # noqa: E501
    journal_location: str, clock: ManualClock
) -> None:
    gate = GATES[1] = Gate()
    system = ActorSystem.open(journal_location, clock=clock, max_run_restarts=0)
    system.spawn(shaky_run, "o-2", id="shaky-o-2")
    assert gate.entered.wait(5)
    closer = threading.Thread(target=system.close)
    closer.start()
    wait_until_closing(system)
    gate.opened.set()  # attempt 1 fails while closing: no retry, nothing recorded
    closer.join(5)
    assert not closer.is_alive()
    assert event_names(stored(journal_location, "shaky-o-2")) == ["Started"]

    with ActorSystem.open(
        journal_location, clock=clock, max_run_restarts=0
    ) as reopened:
        assert reopened.ref("shaky-o-2").result(timeout=5) == "ok-o-2"
        step = reopened.history("shaky-o-2").commands[0]
    key = "shaky-o-2/1"
    assert [("shaky", key, 1), ("shaky", key, 1), ("shaky", key, 2)] == EXECUTIONS
    assert step.outcome is not None
    assert (step.attempts, step.outcome.value) == (1, "ok-o-2")
    assert (
        event_names(stored(journal_location, "shaky-o-2")).count("StepCompleted") == 1
    )


def test_a_step_hanging_in_an_abandoned_system_runs_again_with_the_same_key_and_only_the_first_result_is_recorded(  # noqa: E501
    journal_location: str, clock: ManualClock
) -> None:
    gate = GATES[1] = Gate()
    abandoned = ActorSystem.open(journal_location, clock=clock, max_run_restarts=0)
    old = abandoned.spawn(owned, "o-3", id="owned-o-3")
    assert gate.entered.wait(5)
    as_crashed(abandoned)  # its process is gone, as far as other hosts see
    try:
        with ActorSystem.open(
            journal_location, clock=clock, max_run_restarts=0
        ) as fresh:
            wait_until(_recorded(fresh, "owned-o-3", 1))
            gate.opened.set()  # the abandoned owner's result comes too late
            # Its commit is fenced out: it stops driving the run, and its ref
            # answers with the end the fresh owner records.
            wait_until(lambda: not abandoned.drives("owned-o-3"))
            ref = fresh.ref("owned-o-3")
            ref.send("note", "n")
            assert ref.result(timeout=5) == ["o-3-by-execution-2", "n"]
            assert old.result(timeout=5) == ["o-3-by-execution-2", "n"]
            assert abandoned.restarts == 0
    finally:
        gate.opened.set()
        abandoned.close()
    assert _keys("owned_step") == ["owned-o-3/1", "owned-o-3/1"]
    assert (
        event_names(stored(journal_location, "owned-o-3")).count("StepCompleted") == 1
    )


# == 2. A crash at any point loses no acknowledged signal and no recorded result; ===
# ==    every unfinished run finishes as it would have without the crash          ==

PIPELINE_RUN = "pipeline-o-1"
PIPELINE_SIGNALS = {"first-1": ("first", 1), "second-1": ("second", 2)}


@dataclass(frozen=True)
class CrashFree:
    result: Any
    commands: list[tuple[Any, ...]]
    commits: int


def _summary(run: WorkflowRun) -> list[tuple[Any, ...]]:
    """Each command of the history with its attempts and outcome (not its time)."""
    return [
        (
            c.seq,
            c.kind,
            c.name,
            c.attempts,
            None if c.outcome is None else c.outcome.kind,
            None if c.outcome is None else c.outcome.value,
        )
        for c in run.commands
    ]


def _timers_pending(clock: ManualClock) -> bool:
    try:
        clock.wait_for_timers(1, timeout=0)
    except TimeoutError:
        return False
    return True


def _settled(ref: RunRef) -> bool:
    """Whether ``ref.result()`` would return or raise (a stopped actor) at once."""
    try:
        ref.result(timeout=0)
    except ResultTimeoutError:
        return False
    except Exception:
        return True
    return True


def _life(
    system: ActorSystem,
    clock: ManualClock,
    fault: CommitFault | None,
    acknowledged: set[str],
) -> None:
    """One life of a client and its system: spawn the pipeline (idempotent by id),
    send every signal not acknowledged yet, let time pass; until the injected
    crash (or the run's end). Adds the ids of the signals acknowledged now."""
    try:
        ref = system.spawn(pipeline, "o-1", id=PIPELINE_RUN)
    except InjectedCrash:
        return  # the client never got its ref: it spawns again next time
    for signal_id in sorted(PIPELINE_SIGNALS.keys() - acknowledged):
        topic, payload = PIPELINE_SIGNALS[signal_id]
        try:
            ref.send(topic, payload, signal_id=signal_id, timeout=5)
        except (InjectedCrash, RunUnavailableError, EventConflictError):
            continue  # not acknowledged: the client sends it again next time
        except RunFinishedError:  # it was durable after all (a crash after commit)
            assert signal_id in system.history(PIPELINE_RUN).signal_ids
        acknowledged.add(signal_id)
    deadline = time.monotonic() + 5
    while not ((fault is not None and fault.fired.is_set()) or _settled(ref)):
        if _timers_pending(clock):
            clock.advance("1h")
        assert time.monotonic() < deadline, "the run neither crashed nor ended"
        time.sleep(0.001)


def _last_life(system: ActorSystem, clock: ManualClock, acknowledged: set[str]) -> Any:
    """Without a crash: retry what the client saw fail, let time pass, return
    the result."""
    ref = system.spawn(pipeline, "o-1", id=PIPELINE_RUN)
    stale: list[BaseException | None] = []
    deadline = time.monotonic() + 5
    while True:
        _life(system, clock, None, acknowledged)
        try:
            return ref.result(timeout=0)
        except RunUnavailableError as stopped:
            stale.append(stopped.__cause__)
        # An abandoned owner appended first: this one stopped as stale, and the
        # next message replays the winner's history (unless it loses again).
        assert isinstance(stale[-1], EventConflictError)
        with contextlib.suppress(
            UnknownQueryError, RunFinishedError, RunUnavailableError
        ):
            ref.query("progress")
        assert time.monotonic() < deadline, "the reopened run never finished"


@pytest.fixture(scope="module")
def crash_free(tmp_path_factory: pytest.TempPathFactory) -> CrashFree:
    path = str(tmp_path_factory.mktemp("crash-free") / "journal")
    clock = ManualClock()
    with ActorSystem.open(path, clock=clock, max_run_restarts=0) as system:
        fault = CommitFault(system)  # it never crashes: it counts the commits
        _life(system, clock, fault, set())
        result = system.ref(PIPELINE_RUN).result(timeout=5)
        commands = _summary(system.history(PIPELINE_RUN))
        return CrashFree(result, commands, fault.attempted)


@given(data=st.data())
def test_crashes_at_any_commits_lose_no_acknowledged_signal_nor_recorded_result_and_the_run_ends_as_without_them(  # noqa: E501
    crash_free: CrashFree, data: st.DataObject
) -> None:
    crash = st.tuples(
        st.integers(1, crash_free.commits),  # the commit that crashes
        st.booleans(),  # whether it crashes after it is durable
        # How its system ends: closed, or abandoned (never closed: it may still
        # append, so the next system competes with it for the run).
        st.sampled_from(["close", "abandon"]),
    )
    lives = data.draw(st.lists(crash, min_size=1, max_size=3), label="crashes")
    EXECUTIONS.clear()
    acknowledged: set[str] = set()
    histories: list[list[StoredEvent]] = []
    abandoned: list[ActorSystem] = []
    clock = ManualClock()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "journal")
        try:
            for at, after_commit, ending in lives:
                system = ActorSystem.open(path, clock=clock, max_run_restarts=0)
                if histories and histories[-1]:
                    # Acknowledged means durable: every acknowledged signal is there.
                    received = system.history(PIPELINE_RUN).signal_ids
                    assert acknowledged <= received
                fault = CommitFault(system, at, after_commit=after_commit)
                try:
                    _life(system, clock, fault, acknowledged)
                finally:
                    if ending == "close":
                        system.close()
                    else:
                        as_crashed(system)  # its process is gone, to others
                        abandoned.append(system)
                histories.append(stored(path, PIPELINE_RUN))
            with ActorSystem.open(path, clock=clock, max_run_restarts=0) as last:
                result = _last_life(last, clock, acknowledged)
                final = last.history(PIPELINE_RUN)
            histories.append(stored(path, PIPELINE_RUN))
        finally:
            for system in abandoned:
                system.close()

    assert result == crash_free.result
    assert _summary(final) == crash_free.commands
    for earlier, later in itertools.pairwise(histories):
        assert later[: len(earlier)] == earlier  # nothing recorded lost or changed
    names = event_names(histories[-1])
    assert names.count("StepCompleted") == 3  # each result recorded exactly once
    assert names.count("SignalReceived") == len(PIPELINE_SIGNALS)
    steps = {
        f"{PIPELINE_RUN}/{c.seq}": c.name
        for c in final.commands
        if c.kind is CommandKind.STEP
    }
    assert {key for _, key, _ in EXECUTIONS} == set(steps)  # each ran, same keys
    assert all(steps[key] == name for name, key, _ in EXECUTIONS)


class _StarterPausedAfterStart(RunActor):
    """As if the thread that starts a run's actor were paused right after
    ``start`` (the OS may do that at any time): the actor's ``on_start`` runs
    to its end first."""

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> Any:
        ref = super().start(*args, **kwargs)
        handle = args[3]
        deadline = time.monotonic() + 1
        while handle.actor is not None and time.monotonic() < deadline:
            time.sleep(0.005)
        return ref


def test_a_run_that_ends_while_its_actor_starts_does_not_fail_the_open_with_an_assertion(  # noqa: E501
    journal_location: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the crash property above (abandoned systems): the opener checked
    for a live actor after starting it, but on_start may already have ended the
    run; the open must succeed and the run report how it ended."""
    name = "tests.contract.racing"

    @workflow(name=name)
    async def original(ctx: WorkflowContext) -> list[Any]:
        return [await ctx.call(gated_step, "x"), await ctx.call(alpha)]

    gate = GATES[1] = Gate()
    system = ActorSystem.open(journal_location, clock=clock, max_run_restarts=0)
    system.spawn(original, id="racing")
    assert gate.entered.wait(5)
    closer = threading.Thread(target=system.close)
    closer.start()
    wait_until_closing(system)
    gate.opened.set()  # recorded while closing; alpha is scheduled, never run
    closer.join(5)

    @workflow(name=name)
    async def changed(ctx: WorkflowContext) -> list[Any]:
        return [await ctx.call(gated_step, "x"), await ctx.call(beta)]

    # The run has work, so opening replays it, and the replay fails it at once.
    monkeypatch.setattr(actors._router, "RunActor", _StarterPausedAfterStart)
    with (
        ActorSystem.open(journal_location, clock=clock, max_run_restarts=0) as reopened,
        pytest.raises(WorkflowFailedError) as failed,
    ):
        reopened.ref("racing").result(timeout=5)
    assert failed.value.error.type == "NonDeterminismError"


def test_closing_mid_step_loses_no_acknowledged_signal_and_every_run_ends_as_without_the_crash(  # noqa: E501
    tmp_path: Path,
    journal_location: str,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orders = ["o-1", "o-2", "o-3"]
    signals = {
        order: [("approve", f"yes-{order}"), ("note", f"n-{order}")] for order in orders
    }
    expected = {
        order: _run_crash_free(
            str(tmp_path / f"crash-free-{order}"), approval, (order,), signals[order]
        )
        for order in orders
    }
    EXECUTIONS.clear()
    release = tmp_path / "release"
    monkeypatch.setenv("CHRONIK_BLOCK_FILE", str(release))

    # One worker: the first ship hangs and the other two wait in the queue.
    system = ActorSystem.open(
        journal_location, clock=clock, max_run_restarts=0, max_workers=1
    )
    refs = {
        order: system.spawn(approval, order, id=f"approval-{order}") for order in orders
    }
    for order, ref in refs.items():
        ref.send(*signals[order][0])
    wait_until(lambda: "ship" in [name for name, _, _ in EXECUTIONS])
    for order, ref in refs.items():
        ref.send(*signals[order][1])  # acknowledged while ship is in flight or queued
    closer = threading.Thread(target=system.close)
    closer.start()
    wait_until_closing(system)
    release.touch()  # the running ship ends and is recorded; the queued are dropped
    closer.join(5)
    assert not closer.is_alive()

    with ActorSystem.open(
        journal_location, clock=clock, max_run_restarts=0
    ) as reopened:
        results = {
            order: reopened.ref(f"approval-{order}").result(timeout=5)
            for order in orders
        }
    assert results == expected
    ships = _keys("ship")
    assert sorted(ships) == [f"approval-{order}/3" for order in orders]  # once each


def test_a_fresh_system_loses_no_signal_an_abandoned_one_acknowledged_and_ends_the_run_as_without_the_crash(  # noqa: E501
    tmp_path: Path,
    journal_location: str,
    clock: ManualClock,
) -> None:
    signals = [("approve", "yes"), ("note", "fragile")]
    expected = _run_crash_free(
        str(tmp_path / "crash-free"), gated_approval, ("o-4",), signals
    )
    EXECUTIONS.clear()
    gate = GATES[1] = Gate()

    abandoned = ActorSystem.open(journal_location, clock=clock, max_run_restarts=0)
    try:
        old = abandoned.spawn(gated_approval, "o-4", id="gated-o-4")
        old.send(*signals[0], signal_id="approve-4")
        assert gate.entered.wait(5)
        old.send(*signals[1], signal_id="note-4")  # acknowledged mid-step
        as_crashed(abandoned)  # its process is gone, as far as other hosts see
        with ActorSystem.open(
            journal_location, clock=clock, max_run_restarts=0
        ) as fresh:
            ref = fresh.ref("gated-o-4")
            assert ref.result(timeout=5) == expected
            history = fresh.history("gated-o-4")
            assert history.signal_ids == {"approve-4", "note-4"}
            assert history.pending_signals == {}  # both consumed
            held = stored(journal_location, "gated-o-4")
            gate.opened.set()  # the stale owner's step ends: its commit is fenced
            wait_until(lambda: not abandoned.drives("gated-o-4"))
            assert old.result(timeout=5) == expected  # as the journal has it
            assert stored(journal_location, "gated-o-4") == held
    finally:
        gate.opened.set()
        abandoned.close()
    assert _keys("gated_step") == ["gated-o-4/2", "gated-o-4/2"]


@pytest.mark.multiprocess
def test_a_killed_process_loses_no_acknowledged_signal_nor_recorded_step_and_its_run_ends_as_without_the_kill(  # noqa: E501
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _run_crash_free(
        str(tmp_path / "crash-free"),
        approval,
        ("o-1",),
        [("approve", "yes"), ("note", "fragile")],
    )
    journal, counts = str(tmp_path / "journal"), tmp_path / "counts"
    child = _child(
        "signals",
        journal,
        CHRONIK_COUNT_FILE=str(counts),
        CHRONIK_BLOCK_FILE=str(tmp_path / "never"),
    )
    try:
        _wait_for_lines(counts, child, "acknowledged note", "ship")
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    monkeypatch.setenv("CHRONIK_COUNT_FILE", str(counts))
    monkeypatch.delenv("CHRONIK_BLOCK_FILE", raising=False)
    with ActorSystem.open(journal, max_run_restarts=0) as system:
        assert system.ref("approval-o-1").result(timeout=10) == expected
        assert system.history("approval-o-1").signal_ids == {"approve-1", "note-1"}
    lines = counts.read_text().splitlines()
    assert sorted(line for line in lines if not line.startswith("acknowledged")) == [
        "reserve approval-o-1/1 1",  # recorded before the kill: never run again
        "reserve approval-o-1/1 2",
        "ship approval-o-1/3 1",  # killed mid-step: run again with the same key
        "ship approval-o-1/3 1",
    ]


def test_a_timer_whose_start_was_lost_in_a_crashed_commit_never_fires_before_its_recorded_time(  # noqa: E501
    system: ActorSystem, clock: ManualClock
) -> None:
    """The crashed message had registered its timer already; the replay records
    the timer again, later: the recorded time is the one that counts."""

    @workflow(name="tests.contract.napping")
    async def napping(ctx: WorkflowContext) -> Any:
        await ctx.sleep("1h")
        return ctx.now()

    CommitFault(system, at=2)  # 1 is the spawn; 2 holds TimerStarted
    ref = system.spawn(napping, id="napping")
    with pytest.raises(RunUnavailableError):
        ref.result(timeout=5)
    clock.advance("30m")
    with pytest.raises(UnknownQueryError):
        ref.query("progress")  # a message: the run replays and starts its timer
    fire_at = system.history("napping").commands[0].fire_at
    assert fire_at == clock.now() + timedelta(hours=1)  # as recorded now
    clock.advance("30m")  # the time the lost timer was due, not the recorded one
    try:
        early = ref.result(timeout=0.2)
    except ResultTimeoutError:
        early = None
    assert early is None, f"the timer fired at {early}, before {fire_at}"
    clock.advance("30m")
    assert ref.result(timeout=5) == fire_at


# == 3. A run's events are appended all-or-nothing per mailbox message, in order, ===
# ==    with optimistic concurrency: a stale owner stops and says so              ==


def test_each_message_appends_its_events_in_one_commit_in_order_and_a_crashed_one_appends_none(  # noqa: E501
    system: ActorSystem, journal_location: str, clock: ManualClock
) -> None:
    fault = CommitFault(system, when=has_event("TimerFired", "pipeline-2"))
    refs = [system.spawn(pipeline, f"o-{n}", id=f"pipeline-{n}") for n in (1, 2, 3)]
    for ref in refs:
        for signal_id, (topic, payload) in PIPELINE_SIGNALS.items():
            ref.send(topic, payload, signal_id=f"{ref.id}-{signal_id}")
    clock.wait_for_timers(3)
    clock.advance("1h")  # three timer fires; pipeline-2's commit crashes
    for n in (1, 3):
        assert refs[n - 1].result(timeout=5) == {
            "reservation": f"res-o-{n}",
            "doubled": [2, 4],
        }
    with pytest.raises(RunUnavailableError):
        refs[1].result(timeout=5)
    with pytest.raises(UnknownQueryError):
        refs[1].query("progress")  # the next message resumes it by replay
    assert refs[1].result(timeout=5) == {"reservation": "res-o-2", "doubled": [2, 4]}

    assert fault.crashed is not None
    crashed = [name for _, _, name in fault.crashed]
    assert crashed[:3] == ["TimerFired", "SignalAwaited", "SignalConsumed"]
    with open_reader(journal_location) as reader:
        position = {
            (str(n.originator_id), n.originator_version): n.id
            for n in reader.notifications()
        }
    for run_id in ("pipeline-1", "pipeline-2", "pipeline-3"):
        batches = [b for b in fault.committed if b and b[0][0] == run_id]
        versions = [version for batch in batches for _, version, _ in batch]
        events = stored(journal_location, run_id)
        # The stream is exactly the committed batches, in order, without gaps.
        assert [e.originator_version for e in events] == versions
        assert versions == list(range(1, len(versions) + 1))
        assert event_names(events) == [n for batch in batches for _, _, n in batch]
        for batch in batches:  # each batch is one commit: consecutive ids
            ids = [position[(run_id, version)] for _, version, _ in batch]
            assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert event_names(stored(journal_location, "pipeline-2")).count("TimerFired") == 1


def test_a_message_whose_commit_conflicts_midway_appends_none_of_its_events(
    system: ActorSystem, journal_location: str
) -> None:
    ref = system.spawn(waiter, id="waiter-midway")
    wait_until(_waiting(journal_location, "waiter-midway"))
    held = len(stored(journal_location, "waiter-midway"))
    # Another writer holds the second version this message will need.
    foreign = StoredEvent("waiter-midway", held + 2, "tests:Foreign", b"\x80")
    system._app.recorder.insert_events([foreign])
    before = last_notification_id(system)

    # Its events: SignalReceived, SignalConsumed, Completed at held+1 .. held+3.
    with pytest.raises(EventConflictError, match="stale owner") as conflict:
        ref.send("go", 1)
    # The stream already holds a later version, so its very first event is
    # refused: a stream's versions are appended in ascending order (hash chain).
    assert conflict.value.originator_version == held + 1
    assert last_notification_id(system) == before
    versions = [e.originator_version for e in stored(journal_location, "waiter-midway")]
    assert versions == [*range(1, held + 1), held + 2]  # held+1 was not put either
    with pytest.raises(RunUnavailableError) as stopped:
        ref.result(timeout=5)
    assert isinstance(stopped.value.__cause__, EventConflictError)


def test_when_a_fresh_system_records_first_the_abandoned_owner_of_the_run_stops_as_a_stale_owner(  # noqa: E501
    journal_location: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    gate = GATES[1] = Gate()
    abandoned = ActorSystem.open(journal_location, clock=clock, max_run_restarts=0)
    try:
        old = abandoned.spawn(owned, "o-5", id="owned-o-5")
        assert gate.entered.wait(5)
        as_crashed(abandoned)  # its process is gone, as far as other hosts see
        with (
            ActorSystem.open(
                journal_location, clock=clock, max_run_restarts=0
            ) as fresh,
            caplog.at_level(logging.WARNING, logger="chronik.actors"),
        ):
            wait_until(_recorded(fresh, "owned-o-5", 1))
            held = [e.originator_version for e in stored(journal_location, "owned-o-5")]
            gate.opened.set()
            wait_until(lambda: _fenced_out(caplog, "owned-o-5") is not None)
            fenced = _fenced_out(caplog, "owned-o-5")
            assert isinstance(fenced, FencedOutError)
            assert fenced.held_token < fenced.current_token
            for part in ("owned-o-5", f"token {fenced.held_token}", "taken over"):
                assert part in str(fenced)
            assert [
                e.originator_version for e in stored(journal_location, "owned-o-5")
            ] == held
            ref = fresh.ref("owned-o-5")
            ref.send("note", "n")
            assert ref.result(timeout=5) == ["o-5-by-execution-2", "n"]
            assert old.result(timeout=5) == ["o-5-by-execution-2", "n"]
            assert abandoned.restarts == 0  # stopped, not replaced
    finally:
        gate.opened.set()
        abandoned.close()
    versions = [e.originator_version for e in stored(journal_location, "owned-o-5")]
    assert versions == list(range(1, len(versions) + 1))


def test_when_the_abandoned_owners_step_ends_first_its_result_is_fenced_out_and_the_fresh_owners_is_recorded(  # noqa: E501
    journal_location: str, clock: ManualClock
) -> None:
    first, second = GATES[1], GATES[2] = Gate(), Gate()
    abandoned = ActorSystem.open(journal_location, clock=clock, max_run_restarts=0)
    try:
        old = abandoned.spawn(owned, "o-6", id="owned-o-6")
        assert first.entered.wait(5)
        as_crashed(abandoned)  # its process is gone, as far as other hosts see
        with ActorSystem.open(
            journal_location, clock=clock, max_run_restarts=0
        ) as fresh:
            assert second.entered.wait(5)  # both systems run the step now
            first.opened.set()  # the abandoned owner's result comes first...
            wait_until(lambda: not abandoned.drives("owned-o-6"))
            assert (
                event_names(stored(journal_location, "owned-o-6")).count(
                    "StepCompleted"
                )
                == 0
            )
            second.opened.set()  # ...but only the fresh owner's is recorded
            wait_until(_recorded(fresh, "owned-o-6", 1))
            ref = fresh.ref("owned-o-6")
            ref.send("note", "n")
            assert ref.result(timeout=5) == ["o-6-by-execution-2", "n"]
            # The abandoned owner's ref reads the end; it can send nothing.
            assert old.result(timeout=5) == ["o-6-by-execution-2", "n"]
            with pytest.raises(RunFinishedError):
                old.send("note", "too late")
    finally:
        first.opened.set()
        second.opened.set()
        abandoned.close()
    events = stored(journal_location, "owned-o-6")
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    assert event_names(events).count("StepCompleted") == 1


@pytest.mark.multiprocess
def test_a_process_that_opens_the_journal_of_a_live_owner_takes_none_of_its_busy_runs_and_reaches_them_through_the_journal(  # noqa: E501
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, counts, release = (
        str(tmp_path / "journal"),
        tmp_path / "counts",
        tmp_path / "release",
    )
    child = _child(
        "owner",
        journal,
        CHRONIK_COUNT_FILE=str(counts),
        CHRONIK_BLOCK_FILE=str(release),
    )
    try:
        _wait_for_lines(counts, child, "ship")
        monkeypatch.setenv("CHRONIK_COUNT_FILE", str(counts))
        monkeypatch.delenv("CHRONIK_BLOCK_FILE", raising=False)
        with ActorSystem.open(journal, max_run_restarts=0, lease_ttl=0.6) as second:
            # Lease rounds pass (the owner gives back what is quiet, not the
            # partition whose step is in flight): the run stays with its owner.
            time.sleep(1.0)
            assert not second.drives("approval-o-2")
            held = stored(journal, "approval-o-2")
            ref = second.ref("approval-o-2")
            ref.send("note", "n", signal_id="note-2")  # queued for the owner
            release.touch()  # the owner's ship returns and is recorded
            result = ref.result(timeout=10)
            out, _ = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert result == {"shipment": "shipped-res-o-2-yes", "note": "n"}
    assert json.loads(out) == {"error": None}  # the owner ended the run itself
    events = stored(journal, "approval-o-2")
    assert events[: len(held)] == held
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    names = event_names(events)
    assert names.count("StepCompleted") == 2  # reserve (second attempt), ship
    assert names.count("SignalReceived") == 2
    ships = [line for line in counts.read_text().splitlines() if "ship" in line]
    assert len(ships) == 1  # run once, by the owner
    assert _keys("ship") == []  # never here


# == 4. Replay is checked: changed code fails the run with NonDeterminismError =====


def test_a_run_that_broke_off_replays_changed_code_on_its_next_message_and_fails_with_non_determinism_error(  # noqa: E501
    system: ActorSystem, journal_location: str
) -> None:
    name = "tests.contract.changing-after-crash"

    @workflow(name=name)
    async def original(ctx: WorkflowContext) -> list[Any]:
        first = await ctx.call(alpha)
        go = await ctx.receive("go")
        return [first, go, await ctx.call(alpha)]

    ref = system.spawn(original, id="changing-1")
    wait_until(_waiting(journal_location, "changing-1"))
    CommitFault(system, when=has_event("SignalReceived"))
    with pytest.raises(InjectedCrash):
        ref.send("go", "now", signal_id="go-1")

    @workflow(name=name)
    async def changed(ctx: WorkflowContext) -> list[Any]:
        first = await ctx.call(beta)
        go = await ctx.receive("go")
        return [first, go]

    held = len(stored(journal_location, "changing-1"))
    with pytest.raises(RunFinishedError):
        ref.send("go", "now", signal_id="go-1")  # replays first: the run fails
    with pytest.raises(WorkflowFailedError) as failed:
        ref.result(timeout=5)
    error = failed.value.__cause__
    assert isinstance(error, NonDeterminismError)
    assert (error.workflow_id, error.seq) == ("changing-1", 1)
    assert error.recorded == Command(CommandKind.STEP, "tests.contract.alpha")
    assert error.requested == Command(CommandKind.STEP, "tests.contract.beta")
    for part in (
        "'changing-1'",
        "seq 1",
        "tests.contract.alpha",
        "tests.contract.beta",
    ):
        assert part in str(error)
    assert event_names(stored(journal_location, "changing-1"))[held:] == ["Failed"]
    assert _keys("beta") == []  # it never silently went on


def test_a_run_recorded_during_close_replays_changed_code_after_reopening_and_fails_with_non_determinism_error(  # noqa: E501
    journal_location: str, clock: ManualClock
) -> None:
    name = "tests.contract.changing-after-close"

    @workflow(name=name)
    async def original(ctx: WorkflowContext) -> list[Any]:
        first = await ctx.call(gated_step, "x")
        return [first, await ctx.receive("go")]

    gate = GATES[1] = Gate()
    system = ActorSystem.open(journal_location, clock=clock, max_run_restarts=0)
    system.spawn(original, id="changing-2")
    assert gate.entered.wait(5)
    closer = threading.Thread(target=system.close)
    closer.start()
    wait_until_closing(system)
    gate.opened.set()  # the step ends while closing and is recorded
    closer.join(5)
    assert event_names(stored(journal_location, "changing-2"))[-2:] == [
        "StepCompleted",
        "SignalAwaited",
    ]

    @workflow(name=name)
    async def changed(ctx: WorkflowContext) -> list[Any]:
        await ctx.sleep("1h")
        return [await ctx.receive("go")]

    with ActorSystem.open(
        journal_location, clock=clock, max_run_restarts=0
    ) as reopened:
        ref = reopened.ref("changing-2")
        assert ref.status() is RunStatus.RUNNING  # waiting: passive until a message
        held = len(stored(journal_location, "changing-2"))
        with pytest.raises(RunFinishedError):
            ref.send("go", "now")  # the message replays it: it fails first
        with pytest.raises(WorkflowFailedError) as failed:
            ref.result(timeout=5)
    error = failed.value.__cause__
    assert isinstance(error, NonDeterminismError)
    assert (error.workflow_id, error.seq) == ("changing-2", 1)
    assert error.recorded == Command(CommandKind.STEP, "tests.contract.gated_step")
    assert error.requested == Command(CommandKind.TIMER)
    assert "holds step 'tests.contract.gated_step'" in str(error)
    assert "asks for a timer" in str(error)
    assert event_names(stored(journal_location, "changing-2"))[held:] == ["Failed"]


def test_a_fresh_system_replaying_changed_code_fails_the_run_and_the_abandoned_owner_cannot_go_on(  # noqa: E501
    journal_location: str, clock: ManualClock
) -> None:
    name = "tests.contract.changing-under-owner"

    @workflow(name=name)
    async def original(ctx: WorkflowContext) -> list[Any]:
        first = await ctx.call(alpha)
        return [first, await ctx.receive("note")]

    abandoned = ActorSystem.open(journal_location, clock=clock, max_run_restarts=0)
    try:
        old = abandoned.spawn(original, id="changing-3")
        wait_until(_waiting(journal_location, "changing-3"))
        as_crashed(abandoned)  # its process is gone, as far as other hosts see

        @workflow(name=name)
        async def changed(ctx: WorkflowContext) -> list[Any]:
            return [await ctx.receive("note")]

        with ActorSystem.open(
            journal_location, clock=clock, max_run_restarts=0
        ) as fresh:
            ref = fresh.ref("changing-3")
            with pytest.raises(RunFinishedError):
                ref.send("note", "now")  # the message replays it: it fails first
            with pytest.raises(WorkflowFailedError) as failed:
                ref.result(timeout=5)
            error = failed.value.__cause__
            assert isinstance(error, NonDeterminismError)
            assert (error.seq, error.recorded, error.requested) == (
                1,
                Command(CommandKind.STEP, "tests.contract.alpha"),
                Command(CommandKind.RECEIVE, "note"),
            )
            # The abandoned owner still runs the old code, and cannot append:
            # it learns at its next lease round that it lost the run.
            wait_until(lambda: not abandoned.drives("changing-3"), timeout=10)
            with pytest.raises(RunFinishedError):
                old.send("note", "late")
            assert event_names(stored(journal_location, "changing-3"))[-1] == "Failed"
    finally:
        abandoned.close()


@pytest.mark.multiprocess
def test_a_run_killed_mid_step_fails_with_non_determinism_error_when_reopened_with_changed_code(  # noqa: E501
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, counts = str(tmp_path / "journal"), tmp_path / "counts"
    child = _child(
        "evolving",
        journal,
        CHRONIK_COUNT_FILE=str(counts),
        CHRONIK_BLOCK_FILE=str(tmp_path / "never"),
    )
    try:
        _wait_for_lines(counts, child, "ship")
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    assert event_names(stored(journal, "evolving-o-3"))[-1] == "StepScheduled"

    @workflow(name=evolving.name)
    async def changed(ctx: WorkflowContext, order: str) -> str:
        reservation = await ctx.call(reserve, order)
        await ctx.sleep("1h")
        return str(reservation)

    monkeypatch.setenv("CHRONIK_COUNT_FILE", str(counts))
    try:
        # The run has work to do, so opening replays it at once.
        with (
            ActorSystem.open(journal, max_run_restarts=0) as system,
            pytest.raises(WorkflowFailedError) as failed,
        ):
            system.ref("evolving-o-3").result(timeout=10)
    finally:
        workflow(name=evolving.name)(evolving.fn)  # the original code again
    # The run failed while the journal opened, before anyone held its ref: the
    # error is the one history recorded.
    recorded = failed.value.error
    assert recorded.type == "NonDeterminismError"
    for part in ("'evolving-o-3'", "seq 2", "holds step 'ship'", "asks for a timer"):
        assert part in recorded.message
    names = event_names(stored(journal, "evolving-o-3"))
    assert names[-2:] == ["StepScheduled", "Failed"]
    assert "TimerStarted" not in names
    ships = [
        line for line in counts.read_text().splitlines() if line.startswith("ship")
    ]
    assert ships == ["ship evolving-o-3/2 1"]  # only the killed process ran it


# == 5. Bad input gets a clear error and nothing is written =========================


def test_unencodable_input_is_refused_before_anything_is_written_and_a_fresh_system_finds_none_of_it(  # noqa: E501
    journal_location: str, clock: ManualClock
) -> None:
    abandoned = ActorSystem.open(journal_location, clock=clock, max_run_restarts=0)
    try:
        ref = abandoned.spawn(waiter, "blob", id="waiter-bad")
        wait_until(_waiting(journal_location, "waiter-bad"))
        held = stored(journal_location, "waiter-bad")
        before = last_notification_id(abandoned)
        with pytest.raises(UnencodableValueError, match="type object"):
            abandoned.spawn(waiter, object(), id="bad-args")
        with pytest.raises(
            UnencodableValueError, match=r"type threading\.Event at value\['when'\]"
        ):
            ref.send("go", {"when": threading.Event()})
        assert last_notification_id(abandoned) == before
        assert stored(journal_location, "bad-args") == []
        assert ref.status() is RunStatus.RUNNING  # a refused signal breaks nothing

        # As after a crash:
        with ActorSystem.open(
            journal_location, clock=clock, max_run_restarts=0
        ) as fresh:
            with pytest.raises(UnknownRunError):
                fresh.ref("bad-args")
            assert stored(journal_location, "waiter-bad") == held
            fresh_ref = fresh.ref("waiter-bad")
            fresh_ref.send("go", "fine")
            assert fresh_ref.result(timeout=5) == [4, "fine"]
    finally:
        abandoned.close()


def test_an_unknown_workflow_name_is_refused_and_nothing_is_written(
    system: ActorSystem,
) -> None:
    before = last_notification_id(system)
    for name in (
        "no_such_module:flow",
        "tests.actors.test_contract:no_such_flow",
        "tests.contract.never-registered",
    ):
        with pytest.raises(UnknownWorkflowError, match=name):
            system.spawn(name, id="unknown")
    assert last_notification_id(system) == before
    with pytest.raises(UnknownRunError):
        system.ref("unknown")


def test_a_waiting_run_whose_workflow_is_gone_after_a_restart_refuses_its_next_message_and_writes_nothing(  # noqa: E501
    journal_location: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "tests.contract.vanishing"

    @workflow(name=name)
    async def vanishing(ctx: WorkflowContext) -> Any:
        return await ctx.receive("go")

    with ActorSystem.open(journal_location, clock=clock, max_run_restarts=0) as system:
        system.spawn(vanishing, id="vanishing")
        wait_until(_waiting(journal_location, "vanishing"))
    monkeypatch.delitem(_definitions._registry, name)  # its code is gone

    with ActorSystem.open(
        journal_location, clock=clock, max_run_restarts=0
    ) as reopened:
        ref = reopened.ref("vanishing")
        before = last_notification_id(reopened)
        with pytest.raises(UnknownWorkflowError, match=name):
            ref.send("go", 1)
        assert last_notification_id(reopened) == before
        with pytest.raises(RunUnavailableError) as unavailable:
            ref.result(timeout=5)
        assert isinstance(unavailable.value.__cause__, UnknownWorkflowError)
        assert ref.status() is RunStatus.RUNNING  # unfinished, not failed

        workflow(name=name)(vanishing.fn)  # the code is back: the run goes on
        ref.send("go", 2)
        assert ref.result(timeout=5) == 2


@pytest.fixture
def abandoned_with_a_gone_run(
    journal_location: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ActorSystem]:
    """A system abandoned mid-step in run "vanishing" (whose code is then gone)
    after run "other" was acknowledged its signal."""
    name = "tests.contract.vanishing-mid-step"

    @workflow(name=name)
    async def vanishing(ctx: WorkflowContext) -> str:
        return str(await ctx.call(gated_step, "x"))

    gate = GATES[1] = Gate()
    abandoned = ActorSystem.open(journal_location, clock=clock, max_run_restarts=0)
    try:
        abandoned.spawn(vanishing, id="vanishing")
        other = abandoned.spawn(waiter, id="other")
        assert gate.entered.wait(5)
        other.send("go", "durable")
        monkeypatch.delitem(_definitions._registry, name)
        as_crashed(abandoned)  # its process is gone, as far as other hosts see
        yield abandoned
    finally:
        gate.opened.set()
        abandoned.close()


@pytest.mark.usefixtures("abandoned_with_a_gone_run")
def test_a_run_whose_workflow_is_gone_does_not_keep_the_other_runs_of_its_journal_from_resuming(  # noqa: E501
    journal_location: str, clock: ManualClock
) -> None:
    held = stored(journal_location, "vanishing")
    with ActorSystem.open(journal_location, clock=clock, max_run_restarts=0) as fresh:
        assert fresh.ref("other").result(timeout=5) == [0, "durable"]
        # Unfinished, not failed: restoring its code resumes it. (What its ref
        # says meanwhile is the test below.)
        assert fresh.ref("vanishing").status() is RunStatus.RUNNING
    assert stored(journal_location, "vanishing") == held  # nothing written for it


@pytest.mark.usefixtures("abandoned_with_a_gone_run")
def test_a_run_whose_workflow_is_gone_says_so_on_its_ref_even_after_a_garbage_collection(  # noqa: E501
    journal_location: str, clock: ManualClock
) -> None:
    with ActorSystem.open(journal_location, clock=clock, max_run_restarts=0) as fresh:
        gc.collect()
        with pytest.raises(RunUnavailableError) as unavailable:
            fresh.ref("vanishing").result(timeout=1)
    assert isinstance(unavailable.value.__cause__, UnknownWorkflowError)


def test_reusing_a_run_id_with_other_arguments_or_another_workflow_is_a_run_conflict_that_writes_nothing_even_after_a_restart(  # noqa: E501
    journal_location: str, clock: ManualClock
) -> None:
    abandoned = ActorSystem.open(journal_location, clock=clock, max_run_restarts=0)
    try:
        abandoned.spawn(reserving, "o-1", id="dup")
        wait_until(_waiting(journal_location, "dup"))
        with ActorSystem.open(
            journal_location, clock=clock, max_run_restarts=0
        ) as fresh:
            before = last_notification_id(fresh)
            with pytest.raises(RunConflictError) as conflict:
                fresh.spawn(reserving, "o-2", id="dup")
            assert "'o-1'" in conflict.value.recorded
            assert "'o-2'" in conflict.value.requested
            assert "idempotency key" in str(conflict.value)
            with pytest.raises(RunConflictError, match=r"tests\.contract\.waiter"):
                fresh.spawn(waiter, id="dup")
            with pytest.raises(RunConflictError):
                abandoned.spawn(reserving, "o-2", id="dup")
            same = fresh.spawn(reserving, "o-1", id="dup")  # the run itself
            assert same.status() is RunStatus.RUNNING
            assert last_notification_id(fresh) == before
            assert fresh.history("dup").args == ("o-1",)
    finally:
        abandoned.close()


def test_a_journal_path_that_is_a_file_or_a_directory_of_other_files_is_refused_and_left_as_it_was(  # noqa: E501
    tmp_path: Path, clock: ManualClock
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    with pytest.raises(JournalPathError, match="is a file") as refused:
        ActorSystem.open(notes, clock=clock, max_run_restarts=0)
    assert str(notes) in str(refused.value)
    assert notes.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]

    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("draft")
    with pytest.raises(JournalPathError, match="other files in it"):
        ActorSystem.open(home, clock=clock, max_run_restarts=0)
    assert os.listdir(home) == ["thesis.tex"]
    assert (home / "thesis.tex").read_text() == "draft"


def test_a_full_map_refuses_a_write_whole_and_reopening_with_room_loses_nothing_acknowledged(  # noqa: E501
    path: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 256 * 1024  # the smallest map a journal takes
    monkeypatch.setenv("LMDB_MAP_SIZE", str(cap))
    monkeypatch.setenv("LMDB_MAX_MAP_SIZE", str(cap))
    system = ActorSystem.open(path, clock=clock, max_run_restarts=0)
    spawned: list[str] = []
    log_ends: list[int] = []

    def fill() -> None:
        for n in range(100):
            log_ends.append(last_notification_id(system))
            system.spawn(waiter, "x" * 10_000, id=f"big-{n}")
            spawned.append(f"big-{n}")
            wait_until(_waiting(path, f"big-{n}"))  # its actor wrote all it will

    with pytest.raises(JournalFullError, match="LMDB_MAX_MAP_SIZE") as full:
        fill()
    assert full.value.max_map_size == cap
    assert last_notification_id(system) == log_ends[-1]  # nothing of the refused one
    refused = f"big-{len(spawned)}"
    assert stored(path, refused) == []
    ref = system.ref(spawned[0])
    wait_until(_waiting(path, spawned[0]))
    held = stored(path, spawned[0])
    before = last_notification_id(system)
    with pytest.raises(JournalFullError):
        ref.send("go", "y" * 20_000)
    assert last_notification_id(system) == before
    assert stored(path, spawned[0]) == held
    system.close()

    monkeypatch.setenv("LMDB_MAX_MAP_SIZE", str(16 * cap))
    with ActorSystem.open(path, clock=clock, max_run_restarts=0) as reopened:
        with pytest.raises(UnknownRunError):
            reopened.ref(refused)
        assert all(reopened.ref(i).status() is RunStatus.RUNNING for i in spawned)
        ref = reopened.ref(spawned[0])
        ref.send("go", "small")
        assert ref.result(timeout=5) == [10_000, "small"]
    with JournalReader(path) as reader:
        assert reader.verify().ok
