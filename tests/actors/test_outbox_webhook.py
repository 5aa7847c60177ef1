"""The outbox's webhook sink against a real HTTP server run by the test.

The receiver is the standard library's threaded HTTP server on 127.0.0.1: it
records every request (headers and JSON body) and answers with the status its
``answer`` function gives for the body (per message), which a test changes
while it runs (per call)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import pytest

from actors import (
    ActorSystem,
    OutboxMessage,
    SinkUnavailableError,
    WebhookRefusedError,
    WebhookSink,
    WorkflowContext,
    workflow,
)
from tests.actors._contract_faults import wait_until
from tests.actors._outbox_support import check_a_down_server_stops_the_relay

pytest.importorskip("httpx", reason="httpx is not installed")  # WebhookSink needs it


@attrs.frozen
class Request:
    path: str
    headers: dict[str, str]  # names in lower case
    raw: bytes
    status: int  # what the receiver answered

    @property
    def body(self) -> dict[str, str]:
        body: dict[str, str] = json.loads(self.raw)
        return body


class Receiver:
    """The webhook's receiver: ``answer(body)`` is the status of each request."""

    def __init__(self) -> None:
        self.answer: Callable[[dict[str, str]], int] = lambda body: 200
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as receivers do

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = receiver.answer(json.loads(raw))
                with receiver._lock:
                    receiver._requests.append(Request(self.path, headers, raw, status))
                answer = b"" if status < 300 else f"no, {status}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), daemon=True
        )
        self._thread.start()

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def accepted(self) -> list[str]:
        """The ids of the messages answered with success, in arrival order."""
        return [r.body["id"] for r in self.requests if 200 <= r.status < 300]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    try:
        yield server
    finally:
        server.stop()


@workflow
async def deliveries(ctx: WorkflowContext, count: int) -> int:
    for n in range(count):
        ctx.publish("parcel.delivered", {"n": n}, key="p")
        await ctx.sleep(0)
    return count


def first_occurrences(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def test_messages_arrive_in_log_order_with_envelope_key_and_signature(
    journal_location: str, receiver: Receiver
) -> None:
    secret = b"s3cret"
    sink = WebhookSink(
        f"{receiver.url}/hook", headers={"Authorization": "Bearer t"}, secret=secret
    )
    assert sink.name == f"webhook:{receiver.url}/hook"
    with ActorSystem.open(journal_location) as system:
        system.spawn(deliveries, 4, id="hook-1").result(timeout=10)
        relay = system.relay(sink, poll=0.05, max_pause=0.2)
        wait_until(lambda: len(receiver.accepted()) == 4, timeout=10)
        wait_until(lambda: relay.pending() == [], timeout=10)
    sink.close()
    got = receiver.requests
    ids = [f"hook-1:{seq}" for seq in (1, 3, 5, 7)]
    assert [r.body["id"] for r in got] == ids
    assert [json.loads(r.body["payload"]) for r in got] == [{"n": n} for n in range(4)]
    for request, message_id in zip(got, ids, strict=True):
        assert request.path == "/hook"
        assert request.body["topic"] == "parcel.delivered"
        assert request.body["key"] == "p"
        assert request.body["run_id"] == "hook-1"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["idempotency-key"] == message_id
        assert request.headers["x-chronik-message-id"] == message_id
        assert request.headers["x-chronik-topic"] == "parcel.delivered"
        assert request.headers["authorization"] == "Bearer t"
        signature = hmac.new(secret, request.raw, hashlib.sha256).hexdigest()
        assert request.headers["x-chronik-signature"] == f"sha256={signature}"
    assert [int(r.body["position"]) for r in got] == sorted(
        int(r.body["position"]) for r in got
    )


def test_a_message_the_receiver_refuses_is_dead_lettered_and_the_rest_go(
    journal_location: str, receiver: Receiver
) -> None:
    receiver.answer = lambda body: 400 if body["id"] == "hook-2:3" else 200
    sink = WebhookSink(receiver.url)
    with ActorSystem.open(journal_location) as system:
        system.spawn(deliveries, 3, id="hook-2").result(timeout=10)
        relay = system.relay(sink, service=False, max_attempts=2, first_pause=0.001)
        assert relay.deliver() == 3
        assert relay.pending() == []
        (letter,) = relay.dead_letters()
    sink.close()
    assert letter.message_id == "hook-2:3"
    assert letter.attempts == 2
    assert "WebhookRefusedError" in letter.error
    assert "HTTP status 400" in letter.error
    assert "no, 400" in letter.error  # the start of the receiver's answer
    assert receiver.accepted() == ["hook-2:1", "hook-2:5"]
    refused = [r for r in receiver.requests if r.status == 400]
    assert [r.body["id"] for r in refused] == ["hook-2:3", "hook-2:3"]


def test_while_the_receiver_answers_503_messages_wait_and_then_all_arrive(
    journal_location: str, receiver: Receiver
) -> None:
    sink = WebhookSink(receiver.url, timeout=2.0)
    with ActorSystem.open(journal_location) as system:
        relay = system.relay(sink, poll=0.05, max_pause=0.2)
        system.spawn(deliveries, 2, id="hook-3").result(timeout=10)
        wait_until(lambda: len(receiver.accepted()) == 2, timeout=10)
        receiver.answer = lambda body: 503
        # Runs do not wait for the receiver.
        system.spawn(deliveries, 3, id="hook-4").result(timeout=10)
        wait_until(lambda: relay.unavailable is not None, timeout=10)
        wait_until(lambda: len(receiver.requests) >= 4, timeout=10)  # tried again
        assert "HTTP 503" in (relay.unavailable or "")
        assert len(relay.pending()) == 3
        assert relay.dead_letters() == []
        receiver.answer = lambda body: 200
        wait_until(lambda: relay.pending() == [], timeout=10)
        assert relay.unavailable is None
        assert relay.dead_letters() == []
    sink.close()
    expected = [f"hook-3:{s}" for s in (1, 3)] + [f"hook-4:{s}" for s in (1, 3, 5)]
    accepted = receiver.accepted()
    assert set(accepted) == set(expected)
    assert first_occurrences(accepted) == expected
    refused = {r.body["id"] for r in receiver.requests if r.status == 503}
    repeated = {i for i in accepted if accepted.count(i) > 1}
    assert repeated <= refused  # a repeat only of a message that was retried


def test_a_receiver_that_is_not_listening_stops_the_relay_without_dead_letters(
    journal_location: str,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = WebhookSink(f"http://127.0.0.1:{port}/hook", timeout=0.5)
    check_a_down_server_stops_the_relay(journal_location, down)


# -- the sink alone: what each answer means -----------------------------------


def a_message(topic: str = "parcel.delivered") -> OutboxMessage:
    return OutboxMessage(
        "run-1:1", topic, {"n": 1}, None, "run-1", 7, datetime(2024, 5, 1, tzinfo=UTC)
    )


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_a_2xx_answer_accepts_the_message(receiver: Receiver, status: int) -> None:
    receiver.answer = lambda body: status
    sink = WebhookSink(receiver.url)
    sink.send(a_message())
    sink.close()
    assert receiver.accepted() == ["run-1:1"]


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_a_not_now_answer_is_an_outage_not_a_refusal(
    receiver: Receiver, status: int
) -> None:
    receiver.answer = lambda body: status
    sink = WebhookSink(receiver.url)
    with pytest.raises(SinkUnavailableError, match=f"HTTP {status}"):
        sink.send(a_message())
    sink.close()


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 409, 410, 413, 422])
def test_any_other_answer_refuses_the_message(receiver: Receiver, status: int) -> None:
    receiver.answer = lambda body: status
    sink = WebhookSink(receiver.url)
    with pytest.raises(WebhookRefusedError) as refused:
        sink.send(a_message())
    sink.close()
    assert (refused.value.sink, refused.value.status) == (sink.name, status)
    assert refused.value.body == f"no, {status}"


def test_the_url_may_be_chosen_per_message(receiver: Receiver) -> None:
    sink = WebhookSink(lambda message: f"{receiver.url}/{message.topic}")
    assert sink.name == "webhook"
    sink.send(a_message("orders"))
    sink.send(a_message("invoices"))
    sink.close()
    assert [r.path for r in receiver.requests] == ["/orders", "/invoices"]
    assert "x-chronik-signature" not in receiver.requests[0].headers


def test_a_topic_that_is_not_plain_ascii_goes_percent_encoded_in_its_header(
    receiver: Receiver,
) -> None:
    sink = WebhookSink(receiver.url)
    sink.send(a_message("colis livré"))
    sink.close()
    (request,) = receiver.requests
    assert request.headers["x-chronik-topic"] == "colis%20livr%C3%A9"
    assert request.body["topic"] == "colis livré"
