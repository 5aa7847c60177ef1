"""``ctx.publish``: the transactional outbox's write side (issue 15, part 1).

A published message is an event of the run, committed with the activation's
other events; a replay publishes nothing again; a message that cannot be stored
is refused where it is published, nothing recorded."""

from __future__ import annotations

from typing import Any

import pytest

from actors import (
    ActorSystem,
    Client,
    ContextError,
    WorkflowContext,
    activity,
    workflow,
)
from aggregates import CommandKind, MessagePublished
from journal import UnencodableValueError
from tests.actors._contract_faults import wait_until

executed: list[str] = []


@activity
def reserve(order: str) -> str:
    executed.append(order)
    return f"res-{order}"


@workflow
async def place(ctx: WorkflowContext, order: str) -> list[str]:
    first = ctx.publish("order.placed", {"order": order}, key=order)
    reservation = await ctx.call(reserve, order)
    second = ctx.publish("order.reserved", {"reservation": reservation}, key=order)
    await ctx.receive("ship")
    third = ctx.publish("order.shipped", None)
    return [first, second, third]


def published(client: Client, run_id: str) -> list[tuple[int, str, Any, Any]]:
    return [
        (e.seq, e.topic, e.payload, e.key)
        for e in client.events(run_id)
        if isinstance(e, MessagePublished)
    ]


def test_published_messages_are_events_of_the_run_with_stable_ids(
    journal_location: str,
) -> None:
    with ActorSystem.open(journal_location) as system:
        ref = system.spawn(place, "o-1", id="outbox-1")
        ref.send("ship")
        assert ref.result(timeout=10) == ["outbox-1:1", "outbox-1:3", "outbox-1:5"]
        history = system.history("outbox-1")
        kinds = [record.kind for record in history.commands]
    assert kinds == [
        CommandKind.PUBLISH,
        CommandKind.STEP,
        CommandKind.PUBLISH,
        CommandKind.RECEIVE,
        CommandKind.PUBLISH,
    ]
    with Client(journal_location) as client:
        assert published(client, "outbox-1") == [
            (1, "order.placed", {"order": "o-1"}, "o-1"),
            (3, "order.reserved", {"reservation": "res-o-1"}, "o-1"),
            (5, "order.shipped", None, None),
        ]


def test_a_replayed_run_publishes_nothing_again(journal_location: str) -> None:
    executed.clear()
    with ActorSystem.open(journal_location) as system:
        ref = system.spawn(place, "o-2", id="outbox-2")
        wait_until(lambda: len(system.history("outbox-2").commands) == 4, timeout=10)
    # Reopened: the run replays its history (two publishes, the step) and waits.
    with ActorSystem.open(journal_location) as system:
        system.send("outbox-2", "ship")
        assert system.ref("outbox-2").result(timeout=10)[2] == "outbox-2:5"
    with Client(journal_location) as client:
        assert [seq for seq, *_ in published(client, "outbox-2")] == [1, 3, 5]
    assert executed == ["o-2"]
    del ref


@workflow
async def publishes_unstorable(ctx: WorkflowContext) -> str:
    try:
        ctx.publish("bad", {"handle": object()})
    except UnencodableValueError as error:
        refused = str(error)
    else:
        refused = "stored"
    ctx.publish("good", {"ok": True})
    return refused


def test_a_message_that_cannot_be_stored_is_refused_where_it_is_published(
    journal_system: ActorSystem,
) -> None:
    ref = journal_system.spawn(publishes_unstorable, id="outbox-3")
    refused = ref.result(timeout=10)
    assert "cannot encode a value of type object" in refused
    run = journal_system.history("outbox-3")
    assert [(r.kind, r.name, r.seq) for r in run.commands] == [
        (CommandKind.PUBLISH, "good", 1)  # the refused one took no seq
    ]


@workflow
async def publishes_wrongly(ctx: WorkflowContext, how: str) -> str:
    bad: dict[str, Any] = {
        "topic": {"topic": ""},
        "key": {"topic": "t", "key": 7},
    }[how]
    try:
        ctx.publish(bad["topic"], None, key=bad.get("key"))
    except TypeError as error:
        return str(error)
    return "published"


@pytest.mark.parametrize(
    ("how", "said"),
    [("topic", "topic '' must be a non-empty str"), ("key", "key 7 must be")],
)
def test_a_bad_topic_or_key_is_a_type_error(
    journal_system: ActorSystem, how: str, said: str
) -> None:
    ref = journal_system.spawn(publishes_wrongly, how, id=f"outbox-bad-{how}")
    assert said in ref.result(timeout=10)
    assert journal_system.history(f"outbox-bad-{how}").commands == ()


def test_publishing_outside_workflow_code_is_refused(
    journal_system: ActorSystem,
) -> None:
    captured: list[WorkflowContext] = []

    @workflow(name="tests.outbox:captures")
    async def captures(ctx: WorkflowContext) -> None:
        captured.append(ctx)

    journal_system.spawn(captures, id="outbox-4").result(timeout=10)
    with pytest.raises(ContextError, match="outside workflow 'outbox-4'"):
        captured[0].publish("late", None)
