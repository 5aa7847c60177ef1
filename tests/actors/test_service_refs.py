"""The ref ``service``, ``start_service`` and ``spawn_actor`` return may be told
at once: a tell waits for the first incarnation, which a service's own
supervisor starts after ``service`` has returned."""

from __future__ import annotations

import time
from typing import Any

import pykka
import pytest

from actors import ActorSystem, SystemFailedError
from supervision import ChildUnavailableError


class Tally(pykka.ThreadingActor):
    def __init__(self) -> None:
        super().__init__()
        self.told: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message == "get":
            return self.told
        self.told.append(message)
        return None


class Unstartable(pykka.ThreadingActor):
    def __init__(self) -> None:
        raise RuntimeError("no database")


def test_a_service_told_at_once_after_it_is_declared_gets_the_message_every_time(
    system: ActorSystem,
) -> None:
    for n in range(200):
        system.service(f"tally-{n}", Tally).tell(n)
    for n in range(200):
        assert system.actor(f"tally-{n}").ask("get", timeout=5) == [n]


def test_a_plain_actor_and_a_started_service_may_be_told_at_once(
    system: ActorSystem,
) -> None:
    for n in range(200):
        system.spawn_actor(Tally, name=f"plain-{n}").tell(n)
    system.service("later", Tally, auto_start=False)
    system.start_service("later").tell("now")
    for n in range(200):
        assert system.actor(f"plain-{n}").ask("get", timeout=5) == [n]
    assert system.actor("later").ask("get", timeout=5) == ["now"]


def test_a_service_that_cannot_start_fails_a_tell_with_the_cause_not_a_hang(
    path: str,
) -> None:
    system = ActorSystem.open(path)
    service = system.service("broken", Unstartable, max_restarts=0)
    began = time.monotonic()
    with pytest.raises(ChildUnavailableError, match="services/broken"):
        service.tell("hello")  # its supervisor gave up: the path is gone
    assert time.monotonic() - began < 2.5
    with pytest.raises(SystemFailedError, match="no database"):
        system.join(timeout=10)
