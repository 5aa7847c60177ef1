"""``WorkflowContext``: the authoring API a workflow receives as ``ctx``.

It talks only to the abstract ``WorkflowRuntime`` below, never to the actor or the
journal. Awaitable commands (``call``, ``sleep``, ``receive``) are requests the
coroutine yields to its driver; the driver answers from history or runs them live.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any, Protocol

import attrs

from actors._definitions import ActivityDefinition, as_activity
from actors._duration import Duration, to_seconds
from aggregates import ValueKind

__all__ = [
    "CallStep",
    "Receive",
    "Request",
    "Sleep",
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


class Request:
    """Something a workflow awaits; the driver sends back its outcome."""

    def __await__(self) -> Generator[Request, Any, Any]:
        return (yield self)


@attrs.frozen(eq=False)
class CallStep(Request):
    step: ActivityDefinition
    args: tuple[Any, ...]


@attrs.frozen(eq=False)
class Sleep(Request):
    seconds: float


@attrs.frozen(eq=False)
class Receive(Request):
    topic: str
    timeout: float | None


class WorkflowContext:
    """Every non-deterministic thing a workflow does goes through here and is
    recorded, so a replay of its history takes the same path."""

    def __init__(self, runtime: WorkflowRuntime) -> None:
        self._runtime = runtime

    @property
    def workflow_id(self) -> str:
        return self._runtime.workflow_id

    def call(self, step: Callable[..., Any], *args: Any) -> CallStep:
        """Run ``step(*args)`` as a durable step; await it for its result.

        Raises ``StepFailed`` (when awaited) once the step's retries are spent.
        """
        self._runtime.check_inside("ctx.call()")
        definition = as_activity(step)
        self._runtime.check_encodable(list(args))
        return CallStep(definition, args)

    def sleep(self, duration: Duration) -> Sleep:
        """A durable timer: ``await ctx.sleep("24h")``."""
        self._runtime.check_inside("ctx.sleep()")
        return Sleep(to_seconds(duration))

    def receive(self, topic: str, timeout: Duration | None = None) -> Receive:
        """The next signal on ``topic``, in the order signals were acknowledged.

        Raises ``ReceiveTimeoutError`` (when awaited) if ``timeout`` passes first.
        """
        self._runtime.check_inside("ctx.receive()")
        if not isinstance(topic, str) or not topic:
            msg = f"ctx.receive topic {topic!r} must be a non-empty str"
            raise TypeError(msg)
        return Receive(topic, None if timeout is None else to_seconds(timeout))

    def now(self) -> datetime:
        """The current time of the system's clock, recorded."""
        self._runtime.check_inside("ctx.now()")
        value: datetime = self._runtime.record_value(
            ValueKind.NOW, self._runtime.clock_now
        )
        return value

    def uuid4(self) -> uuid.UUID:
        self._runtime.check_inside("ctx.uuid4()")
        value: uuid.UUID = self._runtime.record_value(ValueKind.UUID, uuid.uuid4)
        return value

    def random(self) -> float:
        """A float in [0, 1), recorded."""
        self._runtime.check_inside("ctx.random()")
        value: float = self._runtime.record_value(ValueKind.RANDOM, random.random)
        return value
