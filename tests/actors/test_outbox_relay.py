"""The outbox's relay (issue 15, part 1): the journal's messages to a sink at
least once, in log order, tracked in the journal; refused ones dead-lettered."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from actors import ActorSystem, OutboxMessage, Relay, WorkflowContext, workflow
from tests.actors._contract_faults import wait_until


@workflow
async def orders(ctx: WorkflowContext, count: int) -> int:
    for n in range(count):
        ctx.publish("order.placed", {"n": n}, key=f"k{n % 2}")
        await ctx.sleep(0)
    return count


class ListSink:
    """A sink a user could write: keeps what it was sent; refuses a message
    while ``refuse`` says so (a broker that is down, say)."""

    def __init__(self, name: str = "list", refuse: Any = None) -> None:
        self.name = name
        self.sent: list[OutboxMessage] = []
        self.refuse = refuse or (lambda message, tries: False)
        self.tries: dict[str, int] = {}
        self.lock = threading.Lock()

    def send(self, message: OutboxMessage) -> None:
        with self.lock:
            tries = self.tries[message.id] = self.tries.get(message.id, 0) + 1
            if self.refuse(message, tries):
                raise ConnectionError(f"refused {message.id} (try {tries})")
            self.sent.append(message)


def publish_and_relay(
    system: ActorSystem, sink: ListSink, run_id: str, count: int
) -> int:
    """Run ``orders(count)`` as ``run_id`` and a relay to ``sink``, until every
    message is sent and tracked; the relay's position."""
    system.spawn(orders, count, id=run_id).result(timeout=10)
    relay = system.relay(sink, poll=0.05)
    wait_until(lambda: len(sink.sent) == count, timeout=10)
    wait_until(lambda: relay.pending() == [], timeout=10)
    return relay.position


def test_the_relay_delivers_every_message_in_log_order_with_stable_ids(
    journal_location: str,
) -> None:
    sink = ListSink()
    with ActorSystem.open(journal_location) as system:
        position = publish_and_relay(system, sink, "relay-1", 5)
    assert [m.id for m in sink.sent] == [f"relay-1:{seq}" for seq in (1, 3, 5, 7, 9)]
    assert [m.payload for m in sink.sent] == [{"n": n} for n in range(5)]
    assert [m.key for m in sink.sent] == ["k0", "k1", "k0", "k1", "k0"]
    assert {m.topic for m in sink.sent} == {"order.placed"}
    positions = [m.position for m in sink.sent]
    assert positions == sorted(positions)
    assert position == positions[-1]


def test_a_relay_opened_again_goes_on_from_its_tracked_position(
    journal_location: str,
) -> None:
    first = ListSink()
    with ActorSystem.open(journal_location) as system:
        assert publish_and_relay(system, first, "relay-2", 3) == first.sent[-1].position
    again = ListSink()
    with ActorSystem.open(journal_location) as system:
        publish_and_relay(system, again, "relay-3", 2)
    assert [m.id for m in again.sent] == ["relay-3:1", "relay-3:3"]


def test_a_refused_message_is_retried_and_runs_go_on_meanwhile(
    journal_location: str,
) -> None:
    sink = ListSink(refuse=lambda message, tries: tries < 3)
    with ActorSystem.open(journal_location) as system:
        system.relay(sink, poll=0.05)
        # Runs publish and finish while the sink refuses: nothing waits on it.
        system.spawn(orders, 2, id="relay-4").result(timeout=10)
        wait_until(lambda: len(sink.sent) == 2, timeout=10)
    assert sink.tries == {"relay-4:1": 3, "relay-4:3": 3}


def test_a_message_refused_every_time_becomes_a_dead_letter_and_can_be_retried(
    journal_location: str,
) -> None:
    down = {"relay-5:3"}
    sink = ListSink(refuse=lambda message, tries: message.id in down)
    with ActorSystem.open(journal_location) as system:
        system.spawn(orders, 3, id="relay-5").result(timeout=10)
        relay = system.relay(sink, service=False, max_attempts=2, first_pause=0.001)
        assert relay.deliver() == 3
        assert [m.id for m in sink.sent] == ["relay-5:1", "relay-5:5"]
        (letter,) = relay.dead_letters()
        assert (letter.message_id, letter.attempts, letter.retried) == (
            "relay-5:3",
            2,
            False,
        )
        assert "ConnectionError: refused relay-5:3 (try 2)" in letter.error
        assert relay.pending() == []  # past it: tracked with the dead letter
        down.clear()
        relay.retry("relay-5:3")
        assert [m.id for m in sink.sent][-1] == "relay-5:3"
        assert relay.dead_letters()[-1].retried
        with pytest.raises(KeyError, match="relay-5:3"):
            relay.retry("relay-5:3")


def test_a_sink_needs_a_name(journal_system: ActorSystem) -> None:
    class Nameless:
        def send(self, message: OutboxMessage) -> None:
            pass

    with pytest.raises(TypeError, match="a sink needs a non-empty str name"):
        journal_system.relay(Nameless())  # type: ignore[arg-type]


def test_two_relays_of_one_sink_deliver_at_least_once_and_neither_fails(
    journal_location: str,
) -> None:
    """Two hosts each running a relay for one sink deliver the same messages
    (at least once); the one that tracks second does not fail on it."""
    one, other = ListSink(), ListSink()
    with ActorSystem.open(journal_location) as system:
        system.spawn(orders, 3, id="relay-6").result(timeout=10)
        tracker = system._app.factory.process_recorder()
        first = Relay(system._app, tracker, one)
        second = Relay(system._app, tracker, other)
        assert len(second.pending()) == 3
        assert first.deliver() == 3
        assert second.deliver() == 0  # reads from the shared position: none left
        stale = Relay(system._app, tracker, other)
        stale.track(1)  # behind the position: a no-op, not an error
        assert stale.position == first.position
    assert [m.id for m in one.sent] == ["relay-6:1", "relay-6:3", "relay-6:5"]


def test_a_commit_with_a_message_wakes_the_relay_at_once(
    journal_location: str,
) -> None:
    """The relay looks every ``poll`` seconds once caught up, but a commit of
    this system that carries a message wakes it at once."""
    sink = ListSink()
    with ActorSystem.open(journal_location) as system:
        system.relay(sink, poll=30.0)
        wait_until(lambda: sink.tries == {}, timeout=5)  # its first look found none
        time.sleep(0.2)  # now waiting out its 30 s
        began = time.monotonic()
        system.spawn(orders, 1, id="relay-7").result(timeout=10)
        wait_until(lambda: len(sink.sent) == 1, timeout=5)
        assert time.monotonic() - began < 5


class BatchListSink(ListSink):
    """A sink with ``send_many``: accepts a batch up to the first message
    ``refuse`` says no to (which the relay then sends alone)."""

    def __init__(self, refuse: Any = None) -> None:
        super().__init__("batch-list", refuse)
        self.batches: list[int] = []

    def send_many(self, messages: list[OutboxMessage]) -> int:
        self.batches.append(len(messages))
        for index, message in enumerate(messages):
            try:
                self.send(message)
            except ConnectionError:
                return index
        return len(messages)


def test_a_sink_with_send_many_gets_batches_and_a_refusal_still_goes_alone(
    journal_location: str,
) -> None:
    bad = "relay-8:41"  # the 21st message
    sink = BatchListSink(refuse=lambda message, tries: message.id == bad)
    with ActorSystem.open(journal_location) as system:
        system.spawn(orders, 40, id="relay-8").result(timeout=10)
        relay = system.relay(sink, service=False, max_attempts=2, first_pause=0.001)
        assert relay.deliver() == 40
        letters = [d.message_id for d in relay.dead_letters()]
        pending = relay.pending()
    expected = [f"relay-8:{seq}" for seq in range(1, 80, 2)]
    assert [m.id for m in sink.sent] == [i for i in expected if i != bad]
    assert letters == [bad]
    assert pending == []
    assert sink.batches[0] == 32  # a batch, then one stopped at the refusal
    assert sink.tries[bad] == 3  # once in its batch, twice alone
