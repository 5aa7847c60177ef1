"""Errors of the supervision layer, under chronik's one root ``ChronikError``.

``journal`` is chronik's bottom layer and holds the root error; importing it keeps
this package free of everything workflow-shaped (it never imports ``actors`` or
``aggregates``). Each error is built from its data (its ``__init__`` arguments are
exactly what ``args`` holds), so it pickles; its message is derived from that data
and says what to do.
"""

from __future__ import annotations

from journal import ChronikError

__all__ = [
    "ActorCrashedError",
    "ChildStartError",
    "ChildUnavailableError",
    "DuplicateChildError",
    "RestartIntensityError",
    "ShutdownTimeoutError",
    "SupervisionError",
    "UnknownChildError",
    "UnknownMessageError",
    "UnsupervisedActorError",
]


class SupervisionError(ChronikError):
    """Something about a supervisor, a child spec or a supervised actor."""


class RestartIntensityError(SupervisionError, RuntimeError):
    """A supervisor restarted its children too often and gave up.

    Its children were stopped; the error is the supervisor's own exit reason, so
    its parent handles it like any child failure (escalation). ``cause`` is the
    failure that broke the limit.
    """

    def __init__(
        self,
        supervisor: str,
        child_id: str,
        max_restarts: int,
        period: float,
        cause: BaseException | None,
    ) -> None:
        super().__init__(supervisor, child_id, max_restarts, period, cause)
        self.supervisor = supervisor
        self.child_id = child_id
        self.max_restarts = max_restarts
        self.period = period
        self.cause = cause

    def __str__(self) -> str:
        how = "exited normally" if self.cause is None else f"failed: {self.cause!r}"
        return (
            f"supervisor {self.supervisor!r} gave up: child {self.child_id!r} "
            f"{how}, which would be restart number {self.max_restarts + 1} within "
            f"{self.period:g} s (max_restarts={self.max_restarts}); fix the child, "
            "or raise max_restarts or lower period in SupervisorFlags"
        )


class ChildStartError(SupervisionError, RuntimeError):
    """A child's start factory raised, so the child is not running."""

    def __init__(self, supervisor: str, child_id: str, cause: BaseException) -> None:
        super().__init__(supervisor, child_id, cause)
        self.supervisor = supervisor
        self.child_id = child_id
        self.cause = cause

    def __str__(self) -> str:
        return (
            f"supervisor {self.supervisor!r} could not start child "
            f"{self.child_id!r}: {self.cause!r}; check the ChildSpec's start factory"
        )


class UnsupervisedActorError(SupervisionError, TypeError):
    """A start factory returned an actor that cannot report its failures."""

    def __init__(self, supervisor: str, child_id: str, actor_class: str) -> None:
        super().__init__(supervisor, child_id, actor_class)
        self.supervisor = supervisor
        self.child_id = child_id
        self.actor_class = actor_class

    def __str__(self) -> str:
        return (
            f"supervisor {self.supervisor!r}: the factory of child {self.child_id!r} "
            f"returned a {self.actor_class}, which cannot report its failures; "
            "subclass supervision.SupervisedActor, build the spec with "
            "ChildSpec.for_actor(...), or start supervision.supervised(YourActor) "
            "in the factory"
        )


class ShutdownTimeoutError(SupervisionError, RuntimeError):
    """A child did not stop within its shutdown timeout and was abandoned."""

    def __init__(self, supervisor: str, child_id: str, timeout: float) -> None:
        super().__init__(supervisor, child_id, timeout)
        self.supervisor = supervisor
        self.child_id = child_id
        self.timeout = timeout

    def __str__(self) -> str:
        return (
            f"supervisor {self.supervisor!r}: child {self.child_id!r} did not stop "
            f"within {self.timeout:g} s and was abandoned (its thread may still "
            "run); make its handlers return, or raise ChildSpec.shutdown"
        )


class DuplicateChildError(SupervisionError, ValueError):
    """A supervisor already has a child with this id."""

    def __init__(self, supervisor: str, child_id: str) -> None:
        super().__init__(supervisor, child_id)
        self.supervisor = supervisor
        self.child_id = child_id

    def __str__(self) -> str:
        return (
            f"supervisor {self.supervisor!r} already has a child {self.child_id!r}; "
            "child ids are unique per supervisor: pick another id or terminate "
            "the existing child first"
        )


class UnknownChildError(SupervisionError, LookupError):
    """A supervisor has no child with this id."""

    def __init__(self, supervisor: str, child_id: str, known: tuple[str, ...]) -> None:
        super().__init__(supervisor, child_id, known)
        self.supervisor = supervisor
        self.child_id = child_id
        self.known = known

    def __str__(self) -> str:
        shown = list(self.known[:_SHOWN_IDS])
        more = len(self.known) - len(shown)
        return (
            f"supervisor {self.supervisor!r} has no child {self.child_id!r}; "
            f"its children are {shown!r}" + (f" and {more} more" if more else "")
        )


_SHOWN_IDS = 10  # a supervisor of workflow runs has thousands: name a few


class ChildUnavailableError(SupervisionError, RuntimeError):
    """No incarnation of a supervised child can take a message now."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"child {self.path!r} is unavailable: {self.reason}"


class ActorCrashedError(SupervisionError, RuntimeError):
    """An actor exited (SystemExit, KeyboardInterrupt, ...) handling an ask.

    The asker gets this instead of the exit itself, which would otherwise end the
    asking thread too. The actor's supervisor got the original exit.
    """

    def __init__(self, actor: str, exit: str) -> None:
        super().__init__(actor, exit)
        self.actor = actor
        self.exit = exit

    def __str__(self) -> str:
        return (
            f"{self.actor} exited with {self.exit} while handling this message; "
            "its supervisor decides whether it restarts: ask again through a "
            "SupervisedRef to reach the next incarnation"
        )


class UnknownMessageError(SupervisionError, TypeError):
    """An actor got a message it has no handler for."""

    def __init__(self, actor: str, message_type: str) -> None:
        super().__init__(actor, message_type)
        self.actor = actor
        self.message_type = message_type

    def __str__(self) -> str:
        return (
            f"{self.actor} has no handler for a {self.message_type} message; "
            "send one of the messages it documents"
        )
