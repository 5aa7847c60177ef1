"""Errors of the supervision layer, under chronik's one root ``ChronikError``.

The root and the error base live in ``chronik_errors``, below every package, so this
package imports nothing workflow- or storage-shaped for them (it never imports
``actors``, ``aggregates`` or ``journal``). Each error declares its data as fields:
its constructor takes exactly those fields and ``args`` holds them, so it pickles;
its message is derived from that data and says what to do.
"""

from __future__ import annotations

from chronik_errors import ChronikError

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

    supervisor: str
    child_id: str
    max_restarts: int
    period: float
    cause: BaseException | None

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

    supervisor: str
    child_id: str
    cause: BaseException
    template = (
        "supervisor {supervisor!r} could not start child "
        "{child_id!r}: {cause!r}; check the ChildSpec's start factory"
    )


class UnsupervisedActorError(SupervisionError, TypeError):
    """A start factory returned an actor that cannot report its failures."""

    supervisor: str
    child_id: str
    actor_class: str
    template = (
        "supervisor {supervisor!r}: the factory of child {child_id!r} "
        "returned a {actor_class}, which cannot report its failures; "
        "subclass supervision.SupervisedActor, build the spec with "
        "ChildSpec.for_actor(...), or start supervision.supervised(YourActor) "
        "in the factory"
    )


class ShutdownTimeoutError(SupervisionError, RuntimeError):
    """A child did not stop within its shutdown timeout and was abandoned."""

    supervisor: str
    child_id: str
    timeout: float
    template = (
        "supervisor {supervisor!r}: child {child_id!r} did not stop "
        "within {timeout:g} s and was abandoned (its thread may still "
        "run); make its handlers return, or raise ChildSpec.shutdown"
    )


class DuplicateChildError(SupervisionError, ValueError):
    """A supervisor already has a child with this id."""

    supervisor: str
    child_id: str
    template = (
        "supervisor {supervisor!r} already has a child {child_id!r}; "
        "child ids are unique per supervisor: pick another id or terminate "
        "the existing child first"
    )


class UnknownChildError(SupervisionError, LookupError):
    """A supervisor has no child with this id."""

    supervisor: str
    child_id: str
    known: tuple[str, ...]

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

    path: str
    reason: str
    template = "child {path!r} is unavailable: {reason}"


class ActorCrashedError(SupervisionError, RuntimeError):
    """An actor exited (SystemExit, KeyboardInterrupt, ...) handling an ask.

    The asker gets this instead of the exit itself, which would otherwise end the
    asking thread too. The actor's supervisor got the original exit.
    """

    actor: str
    exit: str
    template = (
        "{actor} exited with {exit} while handling this message; "
        "its supervisor decides whether it restarts: ask again through a "
        "SupervisedRef to reach the next incarnation"
    )


class UnknownMessageError(SupervisionError, TypeError):
    """An actor got a message it has no handler for."""

    actor: str
    message_type: str
    template = (
        "{actor} has no handler for a {message_type} message; "
        "send one of the messages it documents"
    )
