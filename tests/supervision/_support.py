"""Test children and helpers for the supervision tests."""

from __future__ import annotations

import threading
import time
from typing import Any

import attrs
import pykka

from supervision import (
    ChildSpec,
    Restart,
    SupervisedActor,
    SupervisedRef,
    SupervisorRef,
)

TIMEOUT = 5.0


@attrs.frozen
class Crash:
    """Raise ``error`` while handling this message."""

    error: BaseException


@attrs.frozen
class Note:
    """Append ``text`` to the log."""

    text: str


@attrs.frozen
class Hang:
    """Block until ``release`` is set."""

    release: threading.Event


class Escalations:
    """An ``on_escalate`` that keeps what it gets."""

    def __init__(self) -> None:
        self.causes: list[BaseException] = []
        self.arrived = threading.Event()

    def __call__(self, cause: BaseException) -> None:
        self.causes.append(cause)
        self.arrived.set()

    def wait(self) -> BaseException:
        assert self.arrived.wait(TIMEOUT), "on_escalate was not called"
        [cause] = self.causes
        return cause


PING = "ping"
STOP = "stop"


class Probe(SupervisedActor):
    """A child that writes its life to ``log`` and obeys ``Crash``, ``Hang``,
    ``STOP`` and ``PING`` (answered with its name and actor urn)."""

    def __init__(
        self,
        name: str,
        log: list[str] | None = None,
        *,
        start_errors: list[BaseException] | None = None,
        stop_error: BaseException | None = None,
        stop_hang: threading.Event | None = None,
        stop_sleep: float = 0.0,
    ) -> None:
        super().__init__()
        self.name = name
        self.log = log if log is not None else []
        self.start_errors = start_errors
        self.stop_error = stop_error
        self.stop_hang = stop_hang
        self.stop_sleep = stop_sleep

    def on_start(self) -> None:
        self.log.append(f"start {self.name}")
        if self.start_errors:  # shared by every incarnation: each takes one
            raise self.start_errors.pop(0)

    def on_stop(self) -> None:
        self.log.append(f"stop {self.name}")
        time.sleep(self.stop_sleep)
        if self.stop_hang is not None:
            self.stop_hang.wait(TIMEOUT)
        if self.stop_error is not None:
            raise self.stop_error

    def on_receive(self, message: Any) -> Any:
        match message:
            case Crash(error):
                raise error
            case Note(text):
                self.log.append(text)
                return None
            case Hang(release):
                release.wait(TIMEOUT)
                return None
            case "stop":
                self.stop()
                return None
            case "ping":
                return (self.name, self.actor_urn)
        return super().on_receive(message)


def probe(
    child_id: str,
    log: list[str] | None = None,
    restart: Restart = Restart.PERMANENT,
    shutdown: float | None = TIMEOUT,
    **options: Any,
) -> ChildSpec:
    return ChildSpec.for_actor(
        child_id,
        Probe,
        args=(child_id, log),
        kwargs=options,
        restart=restart,
        shutdown=shutdown,
    )


def assert_stops_then_starts(
    log: list[str], stops: list[str], starts: list[str]
) -> None:
    """Stops run one after the other, in order, before any restart; the restarted
    children's on_start calls run in their own threads, in any order."""
    assert log[: len(stops)] == stops, log
    assert sorted(log[len(stops) :]) == sorted(starts), log


def urn(ref: SupervisedRef) -> str:
    """The actor urn of the incarnation that answers now."""
    _, answered_by = ref.ask(PING, timeout=TIMEOUT)
    assert isinstance(answered_by, str)
    return answered_by


def inject(root: SupervisorRef, ref: SupervisedRef, message: Any) -> None:
    """Tell the current incarnation of ``ref`` something that ends it, and return
    once the whole tree has dealt with it."""
    actor = ref.current()
    assert actor is not None, f"{ref} has no incarnation"
    actor.tell(message)
    assert actor.actor_stopped.wait(TIMEOUT), f"{actor} did not exit"
    root.wait_quiet(TIMEOUT)


def statuses(root: SupervisorRef, *path: str) -> dict[str, tuple[str, int]]:
    """{child id: (status, restarts)} of the supervisor at ``path``."""
    info = root.tree() if not path else root.tree().child(*path).supervisor
    assert info is not None
    return {c.id: (c.status.value, c.restarts) for c in info.children}


class Plain(pykka.ThreadingActor):
    """A pykka actor that knows nothing of supervision."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Crash):
            raise message.error
        return "plain"
