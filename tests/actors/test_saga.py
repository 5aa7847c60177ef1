"""Sagas: compensations run in reverse as durable steps, failures recorded."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from actors import (
    ActorSystem,
    Client,
    DefinitionError,
    ManualClock,
    RetryPolicy,
    RunStatus,
    Saga,
    StepFailed,
    SystemClosedError,
    WorkflowContext,
    WorkflowFailedError,
    activity,
    workflow,
)
from aggregates import CommandKind, OutcomeKind, WorkflowRun
from journal import UnencodableValueError

log: list[str] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    log.clear()
    gate.clear()
    entered.clear()


def history(location: str, workflow_id: str) -> WorkflowRun:
    """The run as its journal holds it, read by a client of its own."""
    with Client(location) as client:
        return client.history(workflow_id)


def steps_of(run: WorkflowRun) -> list[tuple[str | None, tuple[Any, ...], str]]:
    """(name, args, outcome kind) of each step in history, in seq order."""
    return [
        (record.name, record.args, str(record.outcome.kind if record.outcome else ""))
        for record in run.commands
        if record.kind is CommandKind.STEP
    ]


class OutOfStockError(Exception):
    pass


@activity
def do(item: str) -> str:
    log.append(f"do {item}")
    return item


@activity(retry=RetryPolicy(max_attempts=2, initial_interval=0))
def undo(item: str) -> str:
    log.append(f"undo {item}")
    if item.startswith("broken"):
        raise OutOfStockError(f"cannot undo {item}")
    return item


@activity(retry=RetryPolicy(non_retryable=(OutOfStockError,)))
def fail(item: str) -> None:
    log.append(f"fail {item}")
    raise OutOfStockError(f"{item} is out of stock")


@workflow
async def do_then_roll_back(ctx: WorkflowContext, items: list[str]) -> list[str]:
    saga = Saga(ctx)
    for item in items:
        saga.add(undo, await ctx.call(do, item))
    failures = await saga.rollback()
    return [
        f"{failed.step}@{failed.seq}: {failed.error.message}" for failed in failures
    ]


def test_rollback_runs_the_compensations_in_reverse_order_as_recorded_steps(
    journal_system: ActorSystem, journal_location: str
) -> None:
    ref = journal_system.spawn(do_then_roll_back, ["a", "b", "c"], id="saga-abc")
    assert ref.result(timeout=5) == []
    assert log == ["do a", "do b", "do c", "undo c", "undo b", "undo a"]
    assert steps_of(history(journal_location, "saga-abc"))[3:] == [
        ("undo", ("c",), "completed"),
        ("undo", ("b",), "completed"),
        ("undo", ("a",), "completed"),
    ]


def test_a_failing_compensation_is_recorded_and_the_others_still_run(
    journal_system: ActorSystem, journal_location: str
) -> None:
    items = ["a", "broken-b", "c"]
    ref = journal_system.spawn(do_then_roll_back, items, id="saga-broken")
    assert ref.result(timeout=5) == ["undo@5: cannot undo broken-b"]
    assert log[3:] == ["undo c", "undo broken-b", "undo broken-b", "undo a"]
    run = history(journal_location, "saga-broken")
    assert steps_of(run)[3:] == [
        ("undo", ("c",), "completed"),
        ("undo", ("broken-b",), "failed"),
        ("undo", ("a",), "completed"),
    ]
    failed = run.command_at(5)
    assert failed.attempts == 2
    assert failed.outcome is not None
    assert failed.outcome.kind is OutcomeKind.FAILED
    assert failed.outcome.error is not None
    assert failed.outcome.error.type == "OutOfStockError"
    assert run.status is RunStatus.COMPLETED


@workflow
async def reserve_then_fail(ctx: WorkflowContext) -> dict[str, Any]:
    saga = Saga(ctx)
    saga.add(undo, await ctx.call(do, "reservation"))
    saga.add(undo, await ctx.call(do, "charge"))
    try:
        await ctx.call(fail, "shipment")
    except StepFailed as failed:
        first = await saga.rollback()
        second = await saga.rollback()
        return {"failed": failed.step, "first": first, "second": second}
    return {}


def test_a_workflow_that_catches_step_failed_rolls_back_once(
    journal_system: ActorSystem, journal_location: str
) -> None:
    result = journal_system.spawn(reserve_then_fail, id="saga-catch").result(timeout=5)
    assert result == {"failed": "fail", "first": [], "second": []}
    assert log == [
        "do reservation",
        "do charge",
        "fail shipment",
        "undo charge",
        "undo reservation",
    ]
    assert [
        name for name, _, _ in steps_of(history(journal_location, "saga-catch"))
    ] == [
        "do",
        "do",
        "fail",
        "undo",
        "undo",
    ]


@workflow
async def ship_in_saga(ctx: WorkflowContext, items: list[str]) -> str:
    async with Saga(ctx) as saga:
        for item in items:
            saga.add(undo, await ctx.call(do, item))
        await ctx.call(fail, "shipment")
    return "shipped"


def test_async_with_rolls_back_and_reraises_the_original_error(
    journal_system: ActorSystem,
) -> None:
    ref = journal_system.spawn(ship_in_saga, ["a", "b"], id="saga-with")
    with pytest.raises(WorkflowFailedError) as raised:
        ref.result(timeout=5)
    assert raised.value.error.type == "StepFailed"
    assert "shipment is out of stock" in raised.value.error.message
    assert log == ["do a", "do b", "fail shipment", "undo b", "undo a"]


@workflow
async def notes_of_a_failed_saga(ctx: WorkflowContext) -> list[str]:
    try:
        async with Saga(ctx) as saga:
            saga.add(undo, await ctx.call(do, "a"))
            saga.add(undo, await ctx.call(do, "broken-b"))
            raise ValueError("the order was withdrawn")
    except ValueError as error:
        return [str(error), *getattr(error, "__notes__", [])]
    return []


def test_async_with_notes_the_failed_compensations_on_the_original_error(
    journal_system: ActorSystem,
) -> None:
    result = journal_system.spawn(notes_of_a_failed_saga, id="saga-notes").result(
        timeout=5
    )
    assert result[0] == "the order was withdrawn"
    assert len(result) == 2
    assert "compensation failed" in result[1]
    assert "cannot undo broken-b" in result[1]
    assert log[-3:] == ["undo broken-b", "undo broken-b", "undo a"]


@workflow
async def finish_saga(ctx: WorkflowContext) -> int:
    async with Saga(ctx) as saga:
        saga.add(undo, await ctx.call(do, "a"))
    return saga.pending


def test_async_with_compensates_nothing_when_the_block_succeeds(
    journal_system: ActorSystem,
) -> None:
    assert journal_system.spawn(finish_saga, id="saga-ok").result(timeout=5) == 1
    assert log == ["do a"]


@workflow
async def add_badly(ctx: WorkflowContext) -> list[str]:
    saga = Saga(ctx)
    errors: list[str] = []
    for step, args in ((42, ()), (undo, (threading.Event(),))):
        try:
            saga.add(step, *args)  # type: ignore[arg-type]
        except TypeError as error:
            errors.append(f"{type(error).__name__}: {error}")
    errors.append(f"pending {saga.pending}, rollback {await saga.rollback()}")
    return errors


def test_add_refuses_a_step_that_is_not_callable_or_unencodable_arguments(
    journal_system: ActorSystem, journal_location: str
) -> None:
    errors = journal_system.spawn(add_badly, id="saga-bad").result(timeout=5)
    assert errors[0].startswith(f"{DefinitionError.__name__}: ")
    assert "42 is not callable" in errors[0]
    assert errors[1].startswith(f"{UnencodableValueError.__name__}: ")
    assert "Event" in errors[1]
    assert errors[2] == "pending 0, rollback []"
    assert steps_of(history(journal_location, "saga-bad")) == []


def test_a_saga_refuses_anything_but_a_workflow_context() -> None:
    with pytest.raises(TypeError, match="not 'ctx'"):
        Saga("ctx")  # type: ignore[arg-type]


# -- a rollback spanning a restart ------------------------------------------------

gate = threading.Event()  # set: the gated compensation may finish
entered = threading.Event()  # set: the gated compensation has started


@activity
def gated_undo(item: str) -> str:
    log.append(f"undo {item}")
    if item == "b" and not gate.is_set():
        entered.set()
        gate.wait(5)
    return item


@workflow
async def roll_back_through_a_restart(ctx: WorkflowContext) -> str:
    saga = Saga(ctx)
    for item in ("a", "b", "c"):
        saga.add(gated_undo, await ctx.call(do, item))
    await saga.rollback()
    return "rolled back"


def test_a_rollback_cut_by_closing_goes_on_after_reopening_without_redoing_steps(
    journal_location: str, clock: ManualClock
) -> None:
    system = ActorSystem.open(journal_location, clock=clock)
    system.spawn(roll_back_through_a_restart, id="saga-restart")
    assert entered.wait(5)
    closing = threading.Thread(target=system.close)
    closing.start()
    while True:  # close() refuses new work before it waits for the gated step
        try:
            system.ref("saga-restart")
        except SystemClosedError:
            break
        time.sleep(0.001)
    time.sleep(0.05)
    gate.set()
    closing.join(5)
    assert log == ["do a", "do b", "do c", "undo c", "undo b"]
    with ActorSystem.open(journal_location, clock=clock) as system:
        assert system.ref("saga-restart").result(timeout=5) == "rolled back"
    assert log == ["do a", "do b", "do c", "undo c", "undo b", "undo a"]
    assert [
        args for _, args, _ in steps_of(history(journal_location, "saga-restart"))[3:]
    ] == [
        ("c",),
        ("b",),
        ("a",),
    ]
