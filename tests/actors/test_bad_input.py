"""Bad input gets a clear error, and nothing is written."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from actors import (
    ActorSystem,
    ContextError,
    DurationError,
    RunStatus,
    SystemClosedError,
    UnknownRunError,
    UnknownWorkflowError,
    WorkflowContext,
    WorkflowFailedError,
    workflow,
)
from aggregates import RunFinishedError
from journal import JournalReader, UnencodableValueError


@workflow
async def echo(ctx: WorkflowContext, value: Any) -> Any:
    return value


@workflow
async def wait_for_go(ctx: WorkflowContext) -> Any:
    return await ctx.receive("go")


def test_unencodable_arguments_raise_and_write_nothing(
    system: ActorSystem, path: str
) -> None:
    with pytest.raises(UnencodableValueError, match="object"):
        system.spawn(echo, object(), id="echo-object")
    with pytest.raises(UnknownRunError):
        system.ref("echo-object")
    with JournalReader(path) as reader:
        assert list(reader.stream("echo-object")) == []


def test_an_unencodable_signal_payload_raises_and_writes_nothing(
    system: ActorSystem,
) -> None:
    ref = system.spawn(wait_for_go, id="wait-bad-payload")
    with pytest.raises(UnencodableValueError):
        ref.send("go", {"when": threading.Event()})
    ref.send("go", "fine")
    assert ref.result(timeout=5) == "fine"


def test_an_unencodable_workflow_result_fails_the_run(system: ActorSystem) -> None:
    @workflow(name="tests.bad-result")
    async def bad_result(ctx: WorkflowContext) -> object:
        return object()

    with pytest.raises(WorkflowFailedError) as raised:
        system.spawn(bad_result, id="bad-result").result(timeout=5)
    assert raised.value.error.type == "UnencodableValueError"


def test_a_signal_to_a_finished_run_raises_run_finished_error(
    system: ActorSystem,
) -> None:
    ref = system.spawn(echo, 1, id="echo-1")
    assert ref.result(timeout=5) == 1
    with pytest.raises(RunFinishedError, match="echo-1"):
        ref.send("go", "too late")


def test_spawning_an_unknown_workflow_name_raises(system: ActorSystem) -> None:
    with pytest.raises(UnknownWorkflowError, match="no_such_module"):
        system.spawn("no_such_module:flow", id="unknown")


def test_a_workflow_may_be_spawned_by_its_registered_name(
    system: ActorSystem,
) -> None:
    ref = system.spawn("tests.actors.test_bad_input:echo", "by name", id="named")
    assert ref.result(timeout=5) == "by name"


def test_a_negative_sleep_raises_duration_error_inside_the_workflow(
    system: ActorSystem,
) -> None:
    @workflow(name="tests.negative-sleep")
    async def negative(ctx: WorkflowContext) -> str:
        try:
            await ctx.sleep(-5)
        except DurationError as error:
            return str(error)
        return "slept"

    result = system.spawn(negative, id="negative").result(timeout=5)
    assert "is negative" in result


def test_a_context_used_after_its_workflow_finished_raises_context_error(
    system: ActorSystem,
) -> None:
    kept: list[WorkflowContext] = []

    @workflow(name="tests.leak-context")
    async def leak(ctx: WorkflowContext) -> None:
        kept.append(ctx)

    system.spawn(leak, id="leak").result(timeout=5)
    with pytest.raises(ContextError, match="outside workflow 'leak'"):
        kept[0].now()


def test_a_context_used_from_another_thread_raises_context_error(
    system: ActorSystem,
) -> None:
    @workflow(name="tests.thread-context", allow=("threads",))  # the guard steps aside
    async def threaded(ctx: WorkflowContext) -> str:
        errors: list[BaseException] = []

        def use() -> None:
            try:
                ctx.uuid4()
            except ContextError as error:
                errors.append(error)

        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
        return type(errors[0]).__name__

    assert system.spawn(threaded, id="threaded").result(timeout=5) == "ContextError"


def test_awaiting_a_foreign_awaitable_fails_the_run_with_a_clear_error(
    system: ActorSystem,
) -> None:
    @workflow(name="tests.asyncio-sleep", allow=("asyncio.sleep",))  # as above
    async def foreign(ctx: WorkflowContext) -> None:
        await asyncio.sleep(0)  # yields to an event loop that is not there

    ref = system.spawn(foreign, id="foreign")
    with pytest.raises(WorkflowFailedError, match="not a chronik command"):
        ref.result(timeout=5)
    assert ref.status() is RunStatus.FAILED


def test_a_closed_system_refuses_to_spawn(path: str) -> None:
    system = ActorSystem.open(path)
    system.close()
    with pytest.raises(SystemClosedError, match="open it again"):
        system.spawn(echo, 1, id="late")
