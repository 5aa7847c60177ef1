"""The outbox's Redis Streams sink against the real server (issue 15, part 1).

The server: ``CHRONIK_REDIS_URL``, else one answering on 127.0.0.1:6379; the
tests skip, saying why, where none answers (``.ci/run`` runs them here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from actors import ActorSystem, WorkflowContext, workflow
from tests.actors._contract_faults import wait_until
from tests.actors._outbox_support import (
    BEFORE,
    DURING,
    check_a_down_server_stops_the_relay,
    through_an_outage,
)

redis = pytest.importorskip("redis", reason="redis-py is not installed")
from actors import RedisStreamSink  # noqa: E402

URL = os.environ.get("CHRONIK_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stream() -> Iterator[str]:
    """A stream of this test's own on a live server, deleted afterwards."""
    client = redis.Redis.from_url(URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as error:
        pytest.skip(f"no Redis server at {URL} ({error}); set CHRONIK_REDIS_URL")
    name = f"chronik-test:{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        client.delete(name)
        for key in client.scan_iter(match=f"{name}:seen:*"):
            client.delete(key)
        client.close()


def entries(stream: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(URL, decode_responses=True)
    try:
        return [fields for _, fields in client.xrange(stream)]
    finally:
        client.close()


@workflow
async def shipments(ctx: WorkflowContext, count: int, payload: Any) -> int:
    for n in range(count):
        ctx.publish("shipment.sent", {"n": n, "extra": payload}, key="s")
        await ctx.sleep(0)
    return count


def sink_for(stream: str) -> RedisStreamSink:
    return RedisStreamSink(URL, stream=stream, dedupe_prefix=f"{stream}:seen:")


def test_messages_arrive_in_the_stream_in_order_with_their_envelope(
    journal_location: str, stream: str
) -> None:
    sink = sink_for(stream)
    with ActorSystem.open(journal_location) as system:
        system.spawn(shipments, 4, None, id="redis-1").result(timeout=10)
        relay = system.relay(sink, poll=0.05)
        wait_until(lambda: len(entries(stream)) == 4, timeout=10)
        wait_until(lambda: relay.pending() == [], timeout=10)
    got = entries(stream)
    assert [e["id"] for e in got] == [f"redis-1:{seq}" for seq in (1, 3, 5, 7)]
    assert [json.loads(e["payload"]) for e in got] == [
        {"n": n, "extra": None} for n in range(4)
    ]
    assert {(e["topic"], e["key"], e["run_id"]) for e in got} == {
        ("shipment.sent", "s", "redis-1")
    }
    sink.close()


def test_a_message_delivered_again_is_in_the_stream_once(
    journal_location: str, stream: str
) -> None:
    """A relay that crashed after the sink took its messages but before it
    tracked them sends them again: the stream keeps each once."""
    sink = sink_for(stream)
    with ActorSystem.open(journal_location) as system:
        system.spawn(shipments, 3, None, id="redis-2").result(timeout=10)
        relay = system.relay(sink, service=False)
        for message in relay.pending():  # delivered, never tracked
            sink.send(message)
        assert relay.deliver() == 3  # the relay's own pass, from position 0
        assert relay.pending() == []
    assert [e["id"] for e in entries(stream)] == ["redis-2:1", "redis-2:3", "redis-2:5"]
    sink.close()


def test_a_payload_json_cannot_carry_is_dead_lettered_and_the_rest_go(
    journal_location: str, stream: str
) -> None:
    sink = sink_for(stream)
    with ActorSystem.open(journal_location) as system:
        system.spawn(shipments, 2, {1, 2}, id="redis-3").result(timeout=10)
        system.spawn(shipments, 1, float("nan"), id="redis-4").result(timeout=10)
        relay = system.relay(sink, service=False, max_attempts=1)
        relay.deliver()
        (letter,) = relay.dead_letters()
    assert letter.message_id == "redis-4:1"
    assert "ValueError: Out of range float values" in letter.error
    assert [e["id"] for e in entries(stream)] == ["redis-3:1", "redis-3:3"]
    sink.close()


def test_a_server_that_is_down_stops_the_relay_without_dead_letters(
    journal_location: str,
) -> None:
    down = RedisStreamSink("redis://127.0.0.1:1/0", stream="x", timeout=0.2)
    check_a_down_server_stops_the_relay(journal_location, down)


def test_while_the_server_is_out_messages_wait_and_then_go_each_once(
    journal_location: str, stream: str
) -> None:
    """The broker cut off for a while: runs go on, nothing is dead-lettered;
    once it is back every message arrives, each once (the sink's dedupe)."""
    target = urlsplit(URL)
    database = target.path or "/0"

    def sink_at(port: int) -> RedisStreamSink:
        url = f"redis://127.0.0.1:{port}{database}"
        return RedisStreamSink(
            url, stream=stream, dedupe_prefix=f"{stream}:seen:", timeout=0.5
        )

    got = through_an_outage(
        journal_location,
        (target.hostname or "127.0.0.1", target.port or 6379),
        sink_at,
        lambda: [e["id"] for e in entries(stream)],
    )
    assert got == [*BEFORE, *DURING]


@pytest.mark.multiprocess
def test_a_relay_killed_mid_delivery_leaves_every_message_in_the_stream_once(
    journal_location: str, stream: str
) -> None:
    """SIGKILL the relay's process while it delivers: the next relay starts
    from the last tracked position, sends some messages again, and the stream
    (deduplicating by message id) holds every message once, in order."""
    from tests.actors._relay_child import announces

    with ActorSystem.open(journal_location) as system:
        system.spawn(announces, 60, id="redis-kill").result(timeout=10)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.actors._relay_child",
            journal_location,
            URL,
            stream,
        ],
        cwd=ROOT,
    )
    try:
        wait_until(lambda: len(entries(stream)) >= 40, timeout=30)
        assert child.poll() is None, "the relay's process exited early"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    delivered_before = len(entries(stream))
    assert delivered_before < 60, "the kill came too late to test anything"
    assert delivered_before >= 40
    sink = sink_for(stream)
    with ActorSystem.open(journal_location) as system:
        relay = system.relay(sink, poll=0.05)
        wait_until(lambda: relay.pending() == [], timeout=20)
        redelivered = relay.delivered
    sink.close()
    assert [e["id"] for e in entries(stream)] == [
        f"redis-kill:{seq}" for seq in range(1, 61)
    ]
    # It went on from its tracked position (recorded every 32 messages), not
    # from the start: at most 32 were sent twice.
    assert redelivered <= 60 - delivered_before + 32
