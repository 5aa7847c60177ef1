"""One way to address anything: a workflow run and a plain actor are sent a
topic and a payload alike, and spawned by name alike."""

from __future__ import annotations

from typing import Any

import pytest

from actors import (
    Actor,
    ActorSystem,
    Client,
    RunRef,
    UnknownRunError,
    WorkflowContext,
    workflow,
)
from supervision import SupervisedRef


class Greeter(Actor):
    name = "tests.addressing.greeter"

    def __init__(self, greeting: str) -> None:
        super().__init__()
        self.greeting = greeting
        self.seen: list[str] = []

    def receive(self, topic: str, payload: Any) -> Any:
        self.seen.append(topic)
        return f"{self.greeting} {payload} ({topic}, #{len(self.seen)})"


class Mute(Actor):
    name = "tests.addressing.mute"


@workflow(name="tests.addressing.greeting_run")
async def greeting_run(ctx: WorkflowContext, greeting: str) -> str:
    name = await ctx.receive("hello")
    return f"{greeting} {name}"


def test_a_run_and_a_plain_actor_are_spawned_by_name_and_sent_to_alike(
    journal_location: str,
) -> None:
    with ActorSystem.open(journal_location) as system:
        run = system.spawn("tests.addressing.greeting_run", "hi", id="greet-run")
        actor = system.spawn("tests.addressing.greeter", "hey", id="greeter-1")
        assert isinstance(run, RunRef)
        assert isinstance(actor, SupervisedRef)
        # The same call on both kinds of ref.
        signal_id = run.send("hello", "ada")
        assert isinstance(signal_id, str)
        assert actor.send("hello", "bob") == "hey bob (hello, #1)"
        assert run.result(timeout=5) == "hi ada"
        # And through the system, by ref or by name.
        assert system.send(actor, "wave", "cy") == "hey cy (wave, #2)"
        assert system.send("greeter-1", "wave", "di") == "hey di (wave, #3)"
        second = system.spawn(greeting_run, "yo", id="greet-run-2")
        assert isinstance(system.send("greet-run-2", "hello", "eve"), str)
        assert second.result(timeout=5) == "yo eve"
        # A class works as well as its name.
        other = system.spawn(Greeter, "hallo", id="greeter-2")
        assert other.send("hello", "fay") == "hallo fay (hello, #1)"


def test_a_client_sends_to_a_run_as_a_ref_does(journal_location: str) -> None:
    with (
        ActorSystem.open(journal_location) as system,
        Client(journal_location) as client,
    ):
        ref = system.spawn(greeting_run, "hi", id="greet-3")
        assert isinstance(client.send("greet-3", "hello", "gus"), str)
        assert ref.result(timeout=5) == "hi gus"


def test_sending_to_nothing_or_to_an_actor_without_a_handler_is_a_clear_error(
    journal_location: str,
) -> None:
    with ActorSystem.open(journal_location) as system:
        with pytest.raises(UnknownRunError, match="'nobody'"):
            system.send("nobody", "hello", 1)
        mute = system.spawn("tests.addressing.mute", id="mute-1")
        with pytest.raises(NotImplementedError, match="defines no receive"):
            mute.send("hello", 1)
        with pytest.raises(TypeError, match="topic"):
            mute.send("", 1)
        with pytest.raises(TypeError, match="ref or a name"):
            system.send(42, "hello")  # type: ignore[arg-type]


def test_an_actor_name_must_be_a_plain_str() -> None:
    with pytest.raises(TypeError, match="name must be"):

        class Bad(Actor):
            name = "a/b"
