"""Workflow actors under the system's supervision tree, and supervised services.

An engine fault inside a run's actor (a commit that raises, a message it cannot
handle) ends that incarnation; the ``runs`` supervisor starts another, which
replays the run's history and carries on, and refs keep working throughout. A
failure escalating to the root stops the system and says why.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pykka
import pytest

from actors import (
    ActorSystem,
    DuplicateActorError,
    ManualClock,
    RunUnavailableError,
    SystemFailedError,
    UnknownActorError,
    WorkflowContext,
    activity,
    workflow,
)
from aggregates import WorkflowRun
from supervision import ChildStatus, Restart, RestartIntensityError
from tests.actors._contract_faults import (
    CommitFault,
    InjectedCrash,
    event_names,
    has_event,
    stored,
)

EXECUTIONS: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_log() -> None:
    EXECUTIONS.clear()


@activity(name="tests.supervised.pack")
def pack(item: str) -> str:
    EXECUTIONS.append(f"pack {item}")
    return f"box-{item}"


@activity(name="tests.supervised.label")
def label(box: str) -> str:
    EXECUTIONS.append(f"label {box}")
    return f"{box}-labelled"


@workflow(name="tests.supervised.parcel")
async def parcel(ctx: WorkflowContext, items: list[str]) -> dict[str, Any]:
    boxes = [await ctx.call(pack, item) for item in items]
    note = await ctx.receive("note", timeout="1h")
    labels = [await ctx.call(label, box) for box in boxes]
    return {"labels": labels, "note": note}


def _fault_free_result(path: str, clock: ManualClock) -> dict[str, Any]:
    with ActorSystem.open(path, clock=clock) as system:
        ref = system.spawn(parcel, ["a", "b"], id="parcel-1")
        ref.send("note", "fragile", signal_id="note-1")
        result: dict[str, Any] = ref.result(timeout=5)
    return result


def _completions_per_seq(path: str, workflow_id: str) -> Counter[int]:
    completed = Counter[int]()
    for event in stored(path, workflow_id):
        if event.topic.endswith("StepCompleted"):
            completed[event.originator_version] += 1
    return completed


# -- a fault restarts the run's actor, which replays and carries on ----------------


@pytest.mark.parametrize("crash_at", [2, 3, 4, 5, 6])
def test_a_workflow_actor_whose_commit_crashes_is_restarted_by_replay_and_finishes_with_the_same_result(  # noqa: E501
    tmp_path: Any, clock: ManualClock, crash_at: int
) -> None:
    expected = _fault_free_result(str(tmp_path / "calm"), clock)
    EXECUTIONS.clear()
    path = str(tmp_path / "faulty")
    with ActorSystem.open(path, clock=clock) as system:
        fault = CommitFault(system, at=crash_at)  # 1 is the spawn
        ref = system.spawn(parcel, ["a", "b"], id="parcel-1")
        ref.send("note", "fragile", signal_id="note-1")
        assert ref.result(timeout=5) == expected
        assert fault.fired.is_set()
        assert system.restarts == 1
    names = event_names(stored(path, "parcel-1"))
    assert names.count("StepCompleted") == 4  # each step's result recorded once
    assert names.count("SignalReceived") == 1
    assert set(EXECUTIONS) == {"pack a", "pack b", "label box-a", "label box-b"}


def test_a_workflow_actor_killed_by_a_message_it_cannot_handle_comes_back_and_its_ref_keeps_working(  # noqa: E501
    system: ActorSystem,
) -> None:
    ref = system.spawn(parcel, ["a"], id="parcel-2")
    handle = system._router.find("parcel-2")
    assert handle is not None
    assert ref.status().value == "running"
    _wait_for(lambda: "pack a" in EXECUTIONS and handle.idle_since is not None)
    dead = handle.actor
    assert dead is not None
    dead.tell(object())  # an engine fault: no handler for it
    _wait_for(lambda: handle.actor is not dead and handle.actor is not None)
    child = ("runs", "parcel-2#1")  # the run's id, activation 1
    _wait_for(lambda: system.tree().child(*child).restarts == 1)  # published after
    info = system.tree().child(*child)
    assert "TypeError" in (info.last_failure or "")
    ref.send("note", "late", signal_id="note-2")  # to the new incarnation
    assert ref.result(timeout=5)["labels"] == ["box-a-labelled"]
    assert system.restarts == 1
    assert EXECUTIONS.count("pack a") == 1  # recorded before the fault: not again


def test_a_signal_whose_commit_crashes_is_asked_again_of_the_new_actor_and_recorded_once(  # noqa: E501
    system: ActorSystem, path: str
) -> None:
    fault = CommitFault(system, when=has_event("SignalReceived"))
    ref = system.spawn(parcel, ["a"], id="parcel-3")
    assert ref.send("note", "n", signal_id="note-3") == "note-3"  # no error
    assert fault.fired.is_set()
    assert ref.result(timeout=5)["note"] == "n"
    assert event_names(stored(path, "parcel-3")).count("SignalReceived") == 1
    assert system.restarts == 1


def test_a_fault_right_after_the_last_commit_restarts_into_the_finished_run(
    system: ActorSystem, path: str
) -> None:
    CommitFault(system, when=has_event("Completed"), after_commit=True)
    ref = system.spawn(parcel, ["a"], id="parcel-4")
    ref.send("note", "n", signal_id="note-4")
    assert ref.result(timeout=5)["note"] == "n"
    assert system.restarts == 1
    assert event_names(stored(path, "parcel-4")).count("Completed") == 1


@workflow(name="tests.supervised.parent")
async def parent(ctx: WorkflowContext) -> str:
    child = await ctx.spawn(parcel, ["c"], id="parcel-child")
    return f"child labels {child['labels']}"


def test_a_child_whose_start_was_lost_to_its_parents_fault_is_started_by_the_replay(
    system: ActorSystem,
) -> None:
    # The parent's commit holding the child's Started is durable, then it faults
    # before starting the child: its replacement finds the child and starts it.
    CommitFault(system, when=has_event("Started", "parcel-child"), after_commit=True)
    ref = system.spawn(parent, id="parent-1")
    _wait_for(lambda: "pack c" in EXECUTIONS)
    system.ref("parcel-child").send("note", "x", signal_id="note-c")
    assert ref.result(timeout=5) == "child labels ['box-c-labelled']"
    assert system.restarts == 1


# -- the restart budget of one run -------------------------------------------------


class _AlwaysCrash:
    """Every commit of a step result of ``workflow_id`` raises (while
    ``crashes`` is not negative); other commits go through."""

    def __init__(self, system: ActorSystem, workflow_id: str) -> None:
        self.crashes = 0
        self._save = system._host.commit
        self._id = workflow_id
        system._host.commit = self._save_or_crash  # type: ignore[method-assign]

    def _save_or_crash(self, run: WorkflowRun, *children: WorkflowRun) -> None:
        completes = any(
            type(event).__name__ == "StepCompleted" for event in run.pending_events
        )
        if run.id == self._id and completes and self.crashes >= 0:
            self.crashes += 1
            raise InjectedCrash(f"commit of {run.id} crashed")
        self._save(run, *children)


def test_a_run_faulting_past_its_restart_budget_breaks_off_and_its_ref_says_why(
    path: str, clock: ManualClock
) -> None:
    with ActorSystem.open(path, clock=clock, max_run_restarts=2) as system:
        fault = _AlwaysCrash(system, "parcel-5")
        ref = system.spawn(parcel, ["a"], id="parcel-5")
        with pytest.raises(RunUnavailableError, match="InjectedCrash") as broke:
            ref.result(timeout=5)
        assert isinstance(broke.value.__cause__, InjectedCrash)
        assert system.restarts == 2  # then the third fault broke it off
        assert fault.crashes == 3
        # Mended, the next message activates it by replay.
        fault.crashes = -1
        ref.send("note", "n", signal_id="note-5")
        assert ref.result(timeout=5)["note"] == "n"


# -- services and plain actors ---------------------------------------------------------


class Counter_(pykka.ThreadingActor):
    """Counts; ``"boom"`` makes it fail, losing its (non-durable) count."""

    def __init__(self, start: int = 0) -> None:
        super().__init__()
        self.count = start

    def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise RuntimeError("boom")
        if message == "get":
            return self.count
        self.count += int(message)
        return None


def test_a_service_is_restarted_and_its_ref_by_name_keeps_working(
    system: ActorSystem,
) -> None:
    ref = system.service("counter", Counter_, 10)
    ref.tell(5)
    assert ref.ask("get", timeout=5) == 15
    ref.tell("boom", wait=5)  # told: its failure goes to its supervisor
    assert system.actor("counter").ask("get", timeout=5) == 10  # a new incarnation
    path = ("services", "counter", "counter")
    _wait_for(lambda: system.tree().child(*path).restarts == 1)  # published after
    info = system.tree().child(*path)
    assert info.status is ChildStatus.RUNNING
    assert "boom" in (info.last_failure or "")
    assert "counter" in system.format_tree()


def test_a_service_that_does_not_auto_start_waits_for_start_service(
    system: ActorSystem,
) -> None:
    ref = system.service("later", Counter_, auto_start=False)
    assert not ref.is_alive()
    system.start_service("later")
    assert ref.ask("get", timeout=5) == 0
    with pytest.raises(UnknownActorError, match="later"):
        system.start_service("later")  # started already


def test_plain_actors_are_spawned_by_name_and_names_are_unique(
    system: ActorSystem,
) -> None:
    session = system.spawn_actor(Counter_, 1, name="session-1")
    assert session.ask("get", timeout=5) == 1
    anonymous = system.spawn_actor(Counter_)
    assert anonymous.name.startswith("chronik/actors/Counter_-")
    with pytest.raises(DuplicateActorError, match="session-1"):
        system.spawn_actor(Counter_, name="session-1")
    with pytest.raises(UnknownActorError, match="nobody"):
        system.actor("nobody")
    info = system.tree().child("actors", "session-1")
    assert info.restart is Restart.TRANSIENT
    session.current().stop()  # type: ignore[union-attr]  # a normal exit

    def left() -> bool:  # a transient actor that exited normally leaves
        actors = system.tree().child("actors").supervisor
        return actors is not None and "session-1" not in [
            child.id for child in actors.children
        ]

    _wait_for(left)
    assert system.spawn_actor(Counter_, 2, name="session-1").ask("get") == 2


def test_a_service_failing_past_its_restarts_stops_the_system_and_surfaces_the_cause(
    path: str, clock: ManualClock
) -> None:
    system = ActorSystem.open(path, clock=clock)
    ref = system.spawn(parcel, ["a"], id="parcel-6")
    service = system.service("fragile", Counter_, max_restarts=1)
    service.tell("boom", wait=5)
    service.ask("get", timeout=5)  # restarted once
    service.tell("boom", wait=5)  # one too many: escalates to the root
    with pytest.raises(SystemFailedError, match="fragile") as failed:
        system.join(timeout=10)
    assert isinstance(failed.value.__cause__, RestartIntensityError)
    assert isinstance(system.failure, RestartIntensityError)
    with pytest.raises(RunUnavailableError) as unavailable:  # not left waiting
        ref.result(timeout=5)
    assert isinstance(unavailable.value.__cause__, SystemFailedError)
    with pytest.raises(SystemFailedError):
        system.spawn(parcel, ["b"], id="parcel-7")
    # The run's history is intact: a new system resumes it.
    with ActorSystem.open(path, clock=clock) as reopened:
        resumed = reopened.ref("parcel-6")
        resumed.send("note", "n", signal_id="note-6")
        assert resumed.result(timeout=5)["note"] == "n"


def test_leaving_the_with_block_of_a_failed_system_raises_its_failure(
    path: str, clock: ManualClock
) -> None:
    def use_until_it_fails() -> None:
        with ActorSystem.open(path, clock=clock) as system:
            service = system.service("fragile", Counter_, max_restarts=0)
            service.tell("boom", wait=5)
            _wait_for(lambda: system.failure is not None)
        # Leaving the block without an error of its own raises the failure.

    with pytest.raises(SystemFailedError):
        use_until_it_fails()


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.002)):
        if predicate():
            return
        done.wait(0.002)
    raise AssertionError(f"timed out waiting for {predicate}")
