"""``RunRef``: a handle on one workflow run, usable from any thread."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pykka

from actors._errors import ResultTimeoutError, RunUnavailableError
from actors._messages import DeliverSignal
from aggregates import RunError, RunFinishedError, RunStatus

__all__ = ["RunHandle", "RunRef"]


class RunHandle:
    """What the system knows of one run, shared by its refs and its actor.

    Invariant: once ``done`` is set, ``status``, ``result`` and ``error`` are final.
    """

    def __init__(self, workflow_id: str, name: str, args: list[Any]) -> None:
        self.workflow_id = workflow_id
        self.name = name
        self.args = args
        self.actor: pykka.ActorRef[Any] | None = None
        self.status = RunStatus.RUNNING
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def finish(
        self, status: RunStatus, result: Any = None, error: BaseException | None = None
    ) -> None:
        self.status, self.result, self.error = status, result, error
        self.actor = None
        self.done.set()

    def break_off(self, error: BaseException) -> None:
        """The run's actor stopped on ``error``: the run stays unfinished on disk."""
        self.actor = None
        self.error = RunUnavailableError(
            self.workflow_id, f"{type(error).__name__}: {error}"
        )
        self.error.__cause__ = error
        self.done.set()


class RunRef:
    """Refer to a run by id: read its status and result, send it signals."""

    def __init__(
        self, handle: RunHandle, check_encodable: Callable[[Any], None]
    ) -> None:
        self._handle = handle
        self._check_encodable = check_encodable

    @property
    def id(self) -> str:
        return self._handle.workflow_id

    def __repr__(self) -> str:
        return f"RunRef({self.id!r}, {self._handle.status})"

    def status(self) -> RunStatus:
        return self._handle.status

    def result(self, timeout: float | None = None) -> Any:
        """The run's result, waiting up to ``timeout`` seconds for it.

        A failed run raises ``WorkflowFailedError``; a run whose actor stopped on
        an error raises ``RunUnavailableError``.
        """
        if not self._handle.done.wait(timeout):
            raise ResultTimeoutError(self.id, timeout)
        if self._handle.error is not None:
            raise self._handle.error
        return self._handle.result

    def send(
        self,
        topic: str,
        payload: Any = None,
        *,
        signal_id: str | None = None,
        timeout: float | None = 30.0,
    ) -> str:
        """Send a signal; return its id once ``SignalReceived`` is durable.

        Re-sending with the same ``signal_id`` is a no-op, so a sender that lost
        the acknowledgement may safely send again.
        """
        if not isinstance(topic, str) or not topic:
            msg = f"signal topic {topic!r} must be a non-empty str"
            raise TypeError(msg)
        self._check_encodable(payload)
        signal_id = signal_id or str(uuid.uuid4())
        actor = self._handle.actor
        if self._handle.status is not RunStatus.RUNNING:
            action = f"receive signal {signal_id!r} on topic {topic!r}"
            raise RunFinishedError(self.id, self._handle.status, action)
        if actor is None:
            raise self._unavailable("its actor is not running")
        try:
            answer = actor.ask(
                DeliverSignal(topic, payload, signal_id), timeout=timeout
            )
        except pykka.ActorDeadError:
            if self._handle.status is not RunStatus.RUNNING:
                action = f"receive signal {signal_id!r} on topic {topic!r}"
                raise RunFinishedError(self.id, self._handle.status, action) from None
            raise self._unavailable("its actor stopped") from None
        if isinstance(answer, RunError):
            raise answer
        return signal_id

    def _unavailable(self, reason: str) -> BaseException:
        error = self._handle.error
        return error if error is not None else RunUnavailableError(self.id, reason)
