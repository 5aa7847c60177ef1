"""The outbox's NATS JetStream sink against the real server.

The server: ``CHRONIK_NATS_URL``, else one answering on 127.0.0.1:4222, with
JetStream enabled; the tests skip, saying why, where none answers."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs
import pytest

from actors import ActorSystem, WorkflowContext, workflow
from tests.actors._contract_faults import wait_until
from tests.actors._outbox_support import (
    BEFORE,
    DURING,
    check_a_down_server_stops_the_relay,
    through_an_outage,
)

nats = pytest.importorskip("nats", reason="nats-py is not installed")

from actors import NatsJetStreamSink  # noqa: E402

URL = os.environ.get("CHRONIK_NATS_URL", "nats://127.0.0.1:4222")

T = TypeVar("T")


def on_server(work: Callable[[Any], Awaitable[T]]) -> T:
    """``work(js)`` on a connection of its own to the server at ``URL``."""

    async def run() -> T:
        client = await nats.connect(
            URL, allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=1
        )
        try:
            return await work(client.jetstream(timeout=2))
        finally:
            await client.close()

    return asyncio.run(run())


@attrs.frozen
class Stream:
    name: str
    prefix: str  # the stream holds the subjects "<prefix>.>"

    def sink(self, url: str = URL, **options: Any) -> NatsJetStreamSink:
        return NatsJetStreamSink(
            url,
            subject=lambda message: f"{self.prefix}.{message.topic}",
            stream=self.name,
            **options,
        )


@pytest.fixture
def stream() -> Iterator[Stream]:
    """A JetStream stream of this test's own on a live server, deleted afterwards."""
    tag = uuid.uuid4().hex[:10]
    created = Stream(f"chronik-test-{tag}", f"chronik-test.{tag}")
    try:
        on_server(
            lambda js: js.add_stream(
                name=created.name, subjects=[f"{created.prefix}.>"]
            )
        )
    except (OSError, nats.errors.Error) as error:
        pytest.skip(
            f"no NATS server with JetStream at {URL} ({type(error).__name__}: "
            f"{error}); set CHRONIK_NATS_URL"
        )
    try:
        yield created
    finally:
        on_server(lambda js: js.delete_stream(created.name))


def stored(stream: Stream) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """Each message in ``stream``, in stream order: subject, headers, body."""

    async def read(js: Any) -> list[tuple[str, dict[str, str], dict[str, str]]]:
        info = await js.stream_info(stream.name)
        got = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            msg = await js.get_msg(stream.name, seq)
            got.append((msg.subject, msg.headers or {}, json.loads(msg.data)))
        return got

    return on_server(read)


def ids(stream: Stream) -> list[str]:
    return [body["id"] for _, _, body in stored(stream)]


@workflow
async def shipments(ctx: WorkflowContext, count: int, payload: Any) -> int:
    for n in range(count):
        ctx.publish("shipment.sent", {"n": n, "extra": payload}, key="s")
        await ctx.sleep(0)
    return count


def test_messages_arrive_in_the_stream_in_order_with_their_envelope(
    journal_location: str, stream: Stream
) -> None:
    sink = stream.sink()
    try:
        with ActorSystem.open(journal_location) as system:
            system.spawn(shipments, 4, None, id="nats-1").result(timeout=10)
            relay = system.relay(sink, poll=0.05)
            wait_until(lambda: len(ids(stream)) == 4, timeout=10)
            wait_until(lambda: relay.pending() == [], timeout=10)
    finally:
        sink.close()
    got = stored(stream)
    expected = [f"nats-1:{seq}" for seq in (1, 3, 5, 7)]
    assert [body["id"] for _, _, body in got] == expected
    assert [headers["Nats-Msg-Id"] for _, headers, _ in got] == expected
    assert {subject for subject, _, _ in got} == {f"{stream.prefix}.shipment.sent"}
    assert [json.loads(body["payload"]) for _, _, body in got] == [
        {"n": n, "extra": None} for n in range(4)
    ]
    assert {(b["topic"], b["key"], b["run_id"]) for _, _, b in got} == {
        ("shipment.sent", "s", "nats-1")
    }
    assert [int(body["position"]) for _, _, body in got] == sorted(
        int(body["position"]) for _, _, body in got
    )


def test_a_message_delivered_again_is_in_the_stream_once(
    journal_location: str, stream: Stream
) -> None:
    """A relay that crashed after the sink took its messages but before it
    tracked them sends them again: JetStream keeps each once (Nats-Msg-Id)."""
    sink = stream.sink()
    try:
        with ActorSystem.open(journal_location) as system:
            system.spawn(shipments, 3, None, id="nats-2").result(timeout=10)
            relay = system.relay(sink, service=False)
            for message in relay.pending():  # delivered, never tracked
                sink.send(message)
            assert relay.deliver() == 3  # the relay's own pass, from position 0
            assert relay.pending() == []
    finally:
        sink.close()
    assert ids(stream) == ["nats-2:1", "nats-2:3", "nats-2:5"]


def test_a_payload_json_cannot_carry_is_dead_lettered_and_the_rest_go(
    journal_location: str, stream: Stream
) -> None:
    sink = stream.sink()
    try:
        with ActorSystem.open(journal_location) as system:
            system.spawn(shipments, 2, {1, 2}, id="nats-3").result(timeout=10)
            system.spawn(shipments, 1, float("nan"), id="nats-4").result(timeout=10)
            relay = system.relay(sink, service=False, max_attempts=1)
            relay.deliver()
            (letter,) = relay.dead_letters()
    finally:
        sink.close()
    assert letter.message_id == "nats-4:1"
    assert "ValueError: Out of range float values" in letter.error
    assert ids(stream) == ["nats-3:1", "nats-3:3"]


def test_a_message_jetstream_refuses_is_dead_lettered_not_an_outage(
    journal_location: str, stream: Stream
) -> None:
    """The subject lands in another stream than the sink's: JetStream refuses
    it (an API error), the message's fault, so a dead letter."""
    sink = NatsJetStreamSink(
        URL, subject=f"{stream.prefix}.x", stream=f"{stream.name}-elsewhere"
    )
    try:
        with ActorSystem.open(journal_location) as system:
            system.spawn(shipments, 1, None, id="nats-5").result(timeout=10)
            relay = system.relay(sink, service=False, max_attempts=1)
            assert relay.deliver() == 1
            assert relay.unavailable is None
            (letter,) = relay.dead_letters()
    finally:
        sink.close()
    assert letter.message_id == "nats-5:1"
    assert "BadRequestError" in letter.error
    assert ids(stream) == []


def test_a_sink_that_creates_its_stream_publishes_into_it(
    journal_location: str, stream: Stream
) -> None:
    own = Stream(f"{stream.name}-own", f"{stream.prefix}-own")
    sink = own.sink(create_stream=True, stream_subjects=[f"{own.prefix}.>"])
    try:
        with ActorSystem.open(journal_location) as system:
            system.spawn(shipments, 2, None, id="nats-6").result(timeout=10)
            relay = system.relay(sink, service=False)
            assert relay.deliver() == 2
        assert ids(own) == ["nats-6:1", "nats-6:3"]
    finally:
        sink.close()
        on_server(lambda js: js.delete_stream(own.name))


def test_a_server_that_is_down_stops_the_relay_without_dead_letters(
    journal_location: str,
) -> None:
    down = NatsJetStreamSink("nats://127.0.0.1:1", timeout=0.5)
    check_a_down_server_stops_the_relay(journal_location, down)


def test_while_the_server_is_out_messages_wait_and_then_go_each_once(
    journal_location: str, stream: Stream
) -> None:
    """The broker cut off for a while: runs go on, nothing is dead-lettered;
    once it is back every message arrives, each once (JetStream's dedupe)."""
    target = urlsplit(URL)
    got = through_an_outage(
        journal_location,
        (target.hostname or "127.0.0.1", target.port or 4222),
        lambda port: stream.sink(f"nats://127.0.0.1:{port}", timeout=0.5),
        lambda: ids(stream),
    )
    assert got == [*BEFORE, *DURING]
