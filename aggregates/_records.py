"""Read-only views of a run's history, and the plain-data layout behind them.

The aggregate keeps its state as plain dicts and lists (``CommandState``,
``OutcomeState``, ``SignalState``), because a snapshot stores the aggregate's
``vars()`` through the transcoder, which knows plain data only. Callers get the
frozen views below, built from that state on demand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict

import attrs

from aggregates._error_info import ErrorInfo
from aggregates._kinds import CommandKind, OutcomeKind

__all__ = [
    "Command",
    "CommandRecord",
    "CommandState",
    "Outcome",
    "OutcomeState",
    "Signal",
    "SignalState",
    "command_state",
    "outcome_state",
]


def _optional_str(value: str | None) -> str | None:
    # A StrEnum name (ValueKind.NOW) compares and prints as its plain value.
    return None if value is None else str(value)


@attrs.frozen
class Command:
    """What workflow code asks for at one seq: compared on replay.

    ``name`` is the step's or child workflow's name, the receive's topic, the
    value's kind (now/uuid/random) or the patch id; a timer has no name.
    """

    kind: CommandKind = attrs.field(converter=CommandKind)
    name: str | None = attrs.field(default=None, converter=_optional_str)

    def __str__(self) -> str:
        if self.name is None:
            return f"a {self.kind}"
        return f"{self.kind} {self.name!r}"


@attrs.frozen
class Outcome:
    """How a command ended, as history holds it.

    ``value`` is the step's or child's result, the consumed signal's payload, the
    recorded now/uuid/random value, ``True`` for a patch, ``None`` for a fired
    timer; ``error`` is set when ``kind`` is ``FAILED``.
    """

    kind: OutcomeKind
    at: datetime
    value: Any = None
    error: ErrorInfo | None = None
    signal_id: str | None = None

    @classmethod
    def from_state(cls, state: OutcomeState) -> Outcome:
        error = state["error"]
        return cls(
            OutcomeKind(state["kind"]),
            state["at"],
            state["value"],
            None if error is None else ErrorInfo.from_dict(error),
            state["signal_id"],
        )


@attrs.frozen
class CommandRecord:
    """One command of the history and its outcome (``None`` while it is open).

    ``fire_at`` is a timer's fire time or a receive's deadline; ``attempts`` and
    ``last_error`` tell the failed attempts recorded for a step.
    """

    seq: int
    command: Command
    issued_at: datetime
    args: tuple[Any, ...] = ()
    fire_at: datetime | None = None
    child_id: str | None = None
    attempts: int = 0
    last_error: ErrorInfo | None = None
    outcome: Outcome | None = None
    last_failed_at: datetime | None = None  # when the last failed attempt failed

    @property
    def kind(self) -> CommandKind:
        return self.command.kind

    @property
    def name(self) -> str | None:
        return self.command.name

    @property
    def is_open(self) -> bool:
        return self.outcome is None

    @classmethod
    def from_state(cls, seq: int, state: CommandState) -> CommandRecord:
        last_error = state["last_error"]
        outcome = state["outcome"]
        return cls(
            seq,
            Command(CommandKind(state["kind"]), state["name"]),
            state["at"],
            tuple(state["args"]),
            state["fire_at"],
            state["child_id"],
            state["attempts"],
            None if last_error is None else ErrorInfo.from_dict(last_error),
            None if outcome is None else Outcome.from_state(outcome),
            state.get("failed_at"),  # absent from snapshots older than the key
        )


@attrs.frozen
class Signal:
    """A signal received and not yet consumed."""

    topic: str
    payload: Any
    signal_id: str
    received_at: datetime

    @classmethod
    def from_state(cls, topic: str, state: SignalState) -> Signal:
        return cls(topic, state["payload"], state["signal_id"], state["at"])


class OutcomeState(TypedDict):
    kind: str
    at: datetime
    value: Any
    error: dict[str, Any] | None
    signal_id: str | None


class CommandState(TypedDict):
    kind: str
    name: str | None
    at: datetime
    args: list[Any]
    fire_at: datetime | None
    child_id: str | None
    attempts: int
    last_error: dict[str, Any] | None
    outcome: OutcomeState | None
    failed_at: NotRequired[datetime | None]


class SignalState(TypedDict):
    signal_id: str
    payload: Any
    at: datetime


def command_state(
    kind: CommandKind,
    name: str | None,
    at: datetime,
    *,
    args: list[Any] | None = None,
    fire_at: datetime | None = None,
    child_id: str | None = None,
) -> CommandState:
    return {
        "kind": kind.value,
        "name": name,
        "at": at,
        "args": [] if args is None else args,
        "fire_at": fire_at,
        "child_id": child_id,
        "attempts": 0,
        "last_error": None,
        "outcome": None,
    }


def outcome_state(
    kind: OutcomeKind,
    at: datetime,
    *,
    value: Any = None,
    error: dict[str, Any] | None = None,
    signal_id: str | None = None,
) -> OutcomeState:
    return {
        "kind": kind.value,
        "at": at,
        "value": value,
        "error": error,
        "signal_id": signal_id,
    }
