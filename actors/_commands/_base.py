"""What every command has in common: how it is awaited, the answer it resumes
the coroutine with, the driver it is issued to, and the registry by kind.

A command is one kind of thing workflow code can ask of the engine. Its class
knows how it is *issued* (recorded live, or checked against history on replay),
how it is *answered* from history, and how it *fails*. Adding a command is one
such class plus its aggregate events.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Generator
from datetime import datetime
from typing import Any, ClassVar, Protocol

import attrs

from actors._definitions import ActivityDefinition, WorkflowDefinition
from aggregates import CommandKind, CommandRecord, OutcomeKind, WorkflowRun

__all__ = [
    "Answer",
    "Command",
    "Driver",
    "Request",
    "command_of_kind",
    "fresh",
]


@attrs.frozen
class Answer:
    """What the coroutine is resumed with: a value, or an error thrown into it."""

    value: Any = None
    error: BaseException | None = None


class Driver(Protocol):
    """What a command sees of the instance that drives the run."""

    @property
    def run(self) -> WorkflowRun: ...
    @property
    def workflow_id(self) -> str: ...
    @property
    def read_only(self) -> bool:
        """A replay that records nothing and starts nothing."""

    def take_seq(self) -> int:
        """The next seq, now the command's."""

    @property
    def seq(self) -> int:
        """The seq of the last command the code issued."""

    def set_seq(self, seq: int) -> None: ...
    def now(self) -> datetime: ...
    def submit_step(
        self,
        step: ActivityDefinition,
        args: tuple[Any, ...],
        seq: int,
        record: CommandRecord | None,
    ) -> None:
        """Run the step; ``record`` is history's, if it holds the step already
        (its failed attempts count: the step goes on from the next one)."""

    def add_timer(self, seq: int, fire_at: datetime) -> None: ...
    def new_child(
        self, child_id: str, definition: WorkflowDefinition, args: tuple[Any, ...]
    ) -> WorkflowRun | None:
        """The child run to commit with this message, or ``None`` if ``child_id``
        names the same run already; ``RunConflictError`` if another."""

    def add_child(self, child: WorkflowRun) -> None: ...
    def watch_child(self, child_id: str) -> None: ...
    def cancel_child(self, child_id: str) -> None: ...


class Request:
    """Something a workflow awaits; its driver sends back the outcome."""

    def __await__(self) -> Generator[Request, Any, Any]:
        return (yield self)

    def describe(self) -> str:
        """The call that made it, as the code wrote it: ``ctx.sleep(60.0)``."""
        return type(self).__name__

    def issue(self, driver: Driver) -> tuple[int, ...]:
        """Record the command (or check it against history): its seqs."""
        raise NotImplementedError

    def answer(self, driver: Driver, seqs: tuple[int, ...]) -> Answer | None:
        """The answer history holds now, or ``None`` to wait for it."""
        raise NotImplementedError


class Command(Request):
    """A leaf command: one seq, one record of ``kind`` in history."""

    kind: ClassVar[CommandKind]
    awaitable: ClassVar[bool] = True  # False: answered at once, never awaited
    _by_kind: ClassVar[dict[CommandKind, type[Command]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            Command._by_kind[cls.kind] = cls

    def answer(self, driver: Driver, seqs: tuple[int, ...]) -> Answer | None:
        (seq,) = seqs
        run = driver.run
        outcome = run.outcome_at(seq)
        if outcome is None:
            return self.answer_open(driver, seq)
        if outcome.kind is OutcomeKind.COMPLETED:
            return Answer(fresh(outcome.value))
        return self.answer_failed(driver, seq)

    def answer_open(self, driver: Driver, seq: int) -> Answer | None:
        """The answer while history holds no outcome at ``seq``: wait."""
        return None

    def answer_failed(self, driver: Driver, seq: int) -> Answer:
        record = driver.run.command_at(seq)
        return Answer(error=self.failure(driver.workflow_id, record))

    # -- what the engine asks of a recorded command of this kind ---------------

    @classmethod
    def failure(cls, workflow_id: str, record: CommandRecord) -> BaseException:
        """The error the code gets for the failed command ``record``."""
        msg = f"a {cls.kind} command has no failure ({record})"
        raise AssertionError(msg)

    @classmethod
    def needs_actor(cls, run: WorkflowRun, record: CommandRecord) -> bool:
        """Whether the open command ``record`` gives its run work to do now,
        before any message comes (a step to run again, a child to watch)."""
        return False

    @classmethod
    def waiting_for(cls, record: CommandRecord) -> str:
        """What the open command ``record`` waits for, in words."""
        return f"{cls.kind} {record.name!r} (seq {record.seq})"

    @classmethod
    def on_cancel(cls, driver: Driver, record: CommandRecord) -> None:
        """The run was cancelled while it awaited the open command ``record``."""

    @classmethod
    def fire(cls, run: WorkflowRun, seq: int, at: datetime) -> None:
        """Its timer fell due while the command was open."""
        msg = f"a {cls.kind} command has no timer"
        raise AssertionError(msg)


def command_of_kind(kind: CommandKind) -> type[Command]:
    """The command class that records commands of ``kind``."""
    return Command._by_kind[kind]


_IMMUTABLE = (type(None), bool, int, float, str, bytes, datetime, uuid.UUID)


def fresh(value: Any) -> Any:
    """A copy of a value from history for the workflow to keep: the code may
    change it, and history (saved later, snapshotted, replayed) must not.

    Plain dicts and lists (what most step results are) are copied here, a few
    times faster than ``deepcopy``; anything else goes to ``deepcopy``."""
    kind = type(value)
    if kind in _IMMUTABLE_TYPES:
        return value
    if kind is dict:
        return {key: fresh(item) for key, item in value.items()}
    if kind is list:
        return [fresh(item) for item in value]
    return value if isinstance(value, _IMMUTABLE) else copy.deepcopy(value)


_IMMUTABLE_TYPES = frozenset(_IMMUTABLE)
