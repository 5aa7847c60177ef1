"""``WorkflowContext``: the authoring API a workflow receives as ``ctx``.

It talks only to the abstract ``WorkflowRuntime`` below, never to the actor or the
journal. Awaitable commands (``call``, ``sleep``, ``receive``, ``spawn``,
``gather``) are requests the coroutine yields to its driver; the driver gives each
leaf request the next seq when it is awaited (not when it is made), and answers it
from history or runs it live.
"""

from __future__ import annotations

import random
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from types import FrameType
from typing import Any, Protocol, TypeVar

from actors._commands import (
    CallStep,
    Command,
    Gather,
    Receive,
    Request,
    Sleep,
    SpawnChild,
)
from actors._definitions import (
    WorkflowDefinition,
    as_activity,
    resolve_workflow,
)
from actors._duration import Duration, to_seconds
from actors._guard import unguarded
from aggregates import ValueKind, check_message_address

__all__ = [
    "CallStep",
    "Gather",
    "Leaf",
    "Receive",
    "Request",
    "Sleep",
    "SpawnChild",
    "WorkflowContext",
    "WorkflowRuntime",
]


class WorkflowRuntime(Protocol):
    @property
    def workflow_id(self) -> str: ...

    def check_inside(self, what: str) -> None:
        """Raise ``ContextError`` unless the workflow's own code is running now."""

    def check_encodable(self, value: Any) -> None: ...

    def clock_now(self) -> datetime: ...

    def record_value(self, kind: ValueKind, make: Callable[[], Any]) -> Any:
        """The recorded value at the next seq, or ``make()`` recorded there."""

    @unguarded
    def patched(self, patch_id: str) -> bool:
        """Whether this run takes the new code path of ``patch_id``."""

    @unguarded
    def publish(self, topic: str, payload: Any, key: str | None) -> str:
        """Record a message for the outbox at the next seq; its id."""

    @unguarded
    def set_query(self, name: str, handler: Callable[..., Any]) -> None: ...

    def track(self, request: Request, location: str) -> None:
        """``request`` was made at ``location``: the code must await it (or
        pass it to a gather it awaits) before it ends."""

    def untrack(self, request: Request) -> None:
        """``request`` may stay unawaited (a saga's compensation)."""


Leaf = CallStep | Sleep | Receive | SpawnChild


class WorkflowContext:
    """Every non-deterministic thing a workflow does goes through here and is
    recorded, so a replay of its history takes the same path."""

    def __init__(self, runtime: WorkflowRuntime) -> None:
        self._runtime = runtime

    @property
    def workflow_id(self) -> str:
        return self._runtime.workflow_id

    @unguarded
    def call(
        self, step: Callable[..., Any], *args: Any, best_effort: bool = False
    ) -> CallStep:
        """Run ``step(*args)`` as a durable step; await it for its result.

        Raises ``StepFailed`` (when awaited) once the step's retries are spent,
        unless ``best_effort``: then the failure is recorded and the result is None.
        """
        self._runtime.check_inside("ctx.call()")
        definition = as_activity(step)
        self._runtime.check_encodable(list(args))
        return self._track(CallStep(definition, args, bool(best_effort)))

    @unguarded
    def sleep(self, duration: Duration) -> Sleep:
        """A durable timer: ``await ctx.sleep("24h")``."""
        self._runtime.check_inside("ctx.sleep()")
        return self._track(Sleep(to_seconds(duration)))

    @unguarded
    def sleep_until(self, when: datetime) -> Sleep:
        """A durable timer to a time (timezone-aware); a past time fires at once."""
        self._runtime.check_inside("ctx.sleep_until()")
        if not isinstance(when, datetime) or when.utcoffset() is None:
            msg = f"ctx.sleep_until({when!r}) needs a timezone-aware datetime"
            raise TypeError(msg)
        return self._track(Sleep(until=when))

    @unguarded
    def receive(self, topic: str, timeout: Duration | None = None) -> Receive:
        """The next signal on ``topic``, in the order signals were acknowledged.

        Raises ``ReceiveTimeoutError`` (when awaited) if ``timeout`` passes first.
        """
        self._runtime.check_inside("ctx.receive()")
        if not isinstance(topic, str) or not topic:
            msg = f"ctx.receive topic {topic!r} must be a non-empty str"
            raise TypeError(msg)
        seconds = None if timeout is None else to_seconds(timeout)
        return self._track(Receive(topic, seconds))

    @unguarded
    def spawn(
        self,
        workflow: WorkflowDefinition | str,
        *args: Any,
        id: str | None = None,
        detached: bool = False,
    ) -> SpawnChild:
        """Start a durable child run of ``workflow(*args)``.

        Awaited, it gives the child's result (``ChildFailedError`` if the child
        failed or was cancelled); with ``detached=True`` it gives the child's id as
        soon as the child is durably started, and the child lives on its own. The
        id defaults to ``"{workflow_id}/{seq}"``.
        """
        self._runtime.check_inside("ctx.spawn()")
        definition = (
            resolve_workflow(workflow) if isinstance(workflow, str) else workflow
        )
        if not isinstance(definition, WorkflowDefinition):
            msg = f"ctx.spawn takes a @workflow function or its name, not {workflow!r}"
            raise TypeError(msg)
        if id is not None and (not isinstance(id, str) or not id):
            msg = f"ctx.spawn id {id!r} must be a non-empty str"
            raise TypeError(msg)
        self._runtime.check_encodable(list(args))
        return self._track(SpawnChild(definition, args, id, bool(detached)))

    @unguarded
    def gather(self, *requests: Request, return_exceptions: bool = False) -> Gather:
        """Await steps, timers, receives and children together.

        Gives their results in argument order once all have ended. If any failed,
        raises the error of the first failed one in argument order (so a replay
        raises the same), or with ``return_exceptions`` puts errors in the list.
        """
        self._runtime.check_inside("ctx.gather()")
        wrong = [r for r in requests if not (isinstance(r, Command) and r.awaitable)]
        if wrong:
            msg = (
                f"ctx.gather takes ctx.call, ctx.sleep, ctx.receive and ctx.spawn "
                f"requests (not awaited yet), not {wrong[0]!r}"
            )
            raise TypeError(msg)
        gather = Gather(tuple(requests), bool(return_exceptions))  # type: ignore[arg-type]
        return self._track(gather)

    def patched(self, patch_id: str) -> bool:
        """``True`` if this run takes the code path added by ``patch_id``.

        A run that reached this point before the patch was deployed replays the
        old path (``False``); every other run records the patch and takes the new
        one, as Temporal's ``patched()``.
        """
        self._runtime.check_inside("ctx.patched()")
        if not isinstance(patch_id, str) or not patch_id:
            msg = f"ctx.patched id {patch_id!r} must be a non-empty str"
            raise TypeError(msg)
        return self._runtime.patched(patch_id)

    @unguarded
    def publish(
        self, topic: str, payload: Any = None, *, key: str | None = None
    ) -> str:
        """Publish a message for ``topic`` through the transactional outbox.

        The message is recorded in the same commit as this activation's other
        events, so it exists exactly when the run's progress does: never lost
        after the run moved on, never sent for progress a crash undid. The
        outbox's relay delivers it from the journal at least once, with the
        same id every time (the one returned, ``"<workflow id>:<seq>"``), in
        publishing order among messages of one ``key``. A replay of the run
        publishes nothing again. ``payload`` is stored as step arguments are
        (``UnencodableValueError`` here if it cannot be).
        """
        self._runtime.check_inside("ctx.publish()")
        check_message_address(topic, key, "ctx.publish")
        self._runtime.check_encodable(payload)
        return self._runtime.publish(topic, payload, key)

    def set_query(self, name: str, handler: Callable[..., Any]) -> None:
        """Expose read-only state: ``ref.query(name, *args)`` calls ``handler``.

        The handler runs on the run's own thread between its steps; it must not
        use ``ctx`` (queries record nothing).
        """
        self._runtime.check_inside("ctx.set_query()")
        if not isinstance(name, str) or not name:
            msg = f"query name {name!r} must be a non-empty str"
            raise TypeError(msg)
        if not callable(handler):
            msg = f"query {name!r} handler {handler!r} is not callable"
            raise TypeError(msg)
        self._runtime.set_query(name, handler)

    @unguarded
    def now(self) -> datetime:
        """The current time of the system's clock, recorded."""
        self._runtime.check_inside("ctx.now()")
        value: datetime = self._runtime.record_value(
            ValueKind.NOW, self._runtime.clock_now
        )
        return value

    @unguarded
    def uuid4(self) -> uuid.UUID:
        self._runtime.check_inside("ctx.uuid4()")
        value: uuid.UUID = self._runtime.record_value(ValueKind.UUID, uuid.uuid4)
        return value

    @unguarded
    def random(self) -> float:
        """A float in [0, 1), recorded."""
        self._runtime.check_inside("ctx.random()")
        value: float = self._runtime.record_value(ValueKind.RANDOM, random.random)
        return value

    def _track(self, request: _R) -> _R:
        """Note where the code made ``request``: it must await it."""
        frame = sys._getframe(1)
        while frame.f_back is not None and _in_chronik(frame):
            frame = frame.f_back
        self._runtime.track(request, f"{frame.f_code.co_filename}:{frame.f_lineno}")
        return request

    def _untrack(self, request: Request) -> None:
        """``request`` may stay unawaited: a saga holds its compensations."""
        self._runtime.untrack(request)


_R = TypeVar("_R", bound=Request)


def _in_chronik(frame: FrameType) -> bool:
    return str(frame.f_globals.get("__name__", "")).partition(".")[0] == "actors"
