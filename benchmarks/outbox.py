"""The outbox's relay against a bare publish loop of the same client (issue 15).

    .venv/bin/python benchmarks/outbox.py            # Redis and NATS on loopback
    .venv/bin/python benchmarks/outbox.py --quick    # smoke run

Side by side in one run, for each broker (Redis Streams with redis-py; NATS
JetStream with nats-py), on fresh LMDB journals in a temporary directory:

- **bare**: one thread publishes each message with the client alone, one after
  another, waiting for the server's answer (``XADD``; a JetStream publish and its
  ack, with the ``Nats-Msg-Id`` header the sink sets too): the same envelope;
- **relay**: the same number of messages, published by runs (``ctx.publish``)
  beforehand, delivered by ``Relay.deliver`` from the journal to the same server
  with chronik's sink (Redis: each ``XADD`` behind its ``SET NX`` dedupe key, in
  one script; the position tracked every 32 messages): messages/s over the
  whole drain, the journal's reads and tracking included; the issue's target is
  >= 0.5x the bare loop;
- **latency**: a run publishes one message while the relay service runs
  (``system.relay(sink)``; the commit wakes it); from the moment the run's
  result is available (the commit that carried the message is durable) to the
  sink's ``send`` returning (the server accepted the message); median and p90.

Servers: ``CHRONIK_REDIS_URL`` (default redis://127.0.0.1:6379/0) and
``CHRONIK_NATS_URL`` (default nats://127.0.0.1:4222); a broker that does not
answer is left out, saying so.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
sys.path.insert(0, str(_REPO))

# isort: split

from actors import (  # noqa: E402
    ActorSystem,
    NatsJetStreamSink,
    OutboxMessage,
    RedisStreamSink,
    Sink,
    WorkflowContext,
    workflow,
)
from actors._sinks import envelope  # noqa: E402
from benchmarks import workflows as bench  # noqa: E402

TARGET = bench.Target(0.5, at_least=True, on_ratio=True)
REDIS_URL = os.environ.get("CHRONIK_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("CHRONIK_NATS_URL", "nats://127.0.0.1:4222")


@workflow(name="benchmarks.outbox:announces")
async def announces(ctx: WorkflowContext, count: int) -> int:
    for n in range(count):
        ctx.publish("bench.announced", {"n": n, "text": "x" * 64}, key=f"k{n % 8}")
    return count


@workflow(name="benchmarks.outbox:announces_once")
async def announces_once(ctx: WorkflowContext) -> None:
    ctx.publish("bench.once", {"at": "now"})


class Broker(abc.ABC):
    """One server: its bare loop, chronik's sink, and cleaning up."""

    name: str

    @abc.abstractmethod
    def bare(self, messages: Sequence[OutboxMessage]) -> float: ...

    @abc.abstractmethod
    def sink(self, what: str) -> Sink: ...

    @abc.abstractmethod
    def clean(self) -> None: ...


class Redis(Broker):
    name = "Redis Streams"

    def __init__(self, tag: str) -> None:
        import redis

        self._client = redis.Redis.from_url(REDIS_URL)
        self._client.ping()
        self._prefix = f"chronik-bench:{tag}"

    def bare(self, messages: Sequence[OutboxMessage]) -> float:
        stream = f"{self._prefix}:bare"
        began = time.perf_counter()
        for message in messages:
            self._client.xadd(stream, envelope(message))  # type: ignore[arg-type]
        return len(messages) / (time.perf_counter() - began)

    def sink(self, what: str) -> Sink:
        stream = f"{self._prefix}:{what}"
        return RedisStreamSink(REDIS_URL, stream=stream, dedupe_prefix=f"{stream}:")

    def clean(self) -> None:
        for key in self._client.scan_iter(match=f"{self._prefix}:*"):
            self._client.delete(key)
        self._client.close()


class Nats(Broker):
    name = "NATS JetStream"

    def __init__(self, tag: str) -> None:
        self._stream = f"chronik-bench-{tag}"
        self._subject = f"chronik.bench.{tag}"
        self._loop = asyncio.new_event_loop()
        self._nc: Any = self._loop.run_until_complete(self._connect())

    async def _connect(self) -> Any:
        import nats

        nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
        js = nc.jetstream()
        await js.add_stream(name=self._stream, subjects=[f"{self._subject}.>"])
        return nc

    def bare(self, messages: Sequence[OutboxMessage]) -> float:
        js = self._nc.jetstream()
        subject = f"{self._subject}.bare"

        async def loop() -> float:
            began = time.perf_counter()
            for message in messages:
                body = json.dumps(envelope(message)).encode()
                headers = {"Nats-Msg-Id": f"bare-{message.id}"}
                await js.publish(subject, body, headers=headers)
            return len(messages) / (time.perf_counter() - began)

        rate: float = self._loop.run_until_complete(loop())
        return rate

    def sink(self, what: str) -> Sink:
        subject = f"{self._subject}.{what}"
        return NatsJetStreamSink(
            NATS_URL, stream=self._stream, subject=subject, name=f"nats-{what}"
        )

    def clean(self) -> None:
        async def drop() -> None:
            await self._nc.jetstream().delete_stream(self._stream)
            await self._nc.close()

        self._loop.run_until_complete(drop())
        self._loop.close()


def relayed(
    broker: Broker, journal: str, count: int
) -> tuple[float, list[OutboxMessage]]:
    runs = 50
    with ActorSystem.open(journal) as system:
        for run in range(runs):
            system.spawn(announces, count // runs, id=f"bench-{run}").result(timeout=60)
        sink = broker.sink("relay")
        relay = system.relay(sink, service=False)
        sample = relay.pending()
        began = time.perf_counter()
        sent = 0
        while (done := relay.deliver()) > 0:
            sent += done
        seconds = time.perf_counter() - began
        _close(sink)
    return sent / seconds, sample


class _Stamped:
    """A sink that notes when ``send`` returned, message by message."""

    def __init__(self, sink: Sink) -> None:
        self.name = sink.name
        self.inner = sink
        self.accepted: dict[str, float] = {}

    def send(self, message: OutboxMessage) -> None:
        self.inner.send(message)
        self.accepted[message.id] = time.perf_counter()


def latencies(broker: Broker, journal: str, rounds: int) -> list[float]:
    stamped = _Stamped(broker.sink("latency"))
    found: list[float] = []
    with ActorSystem.open(journal) as system:
        system.relay(stamped, poll=0.5)
        for round_ in range(rounds + 1):  # round 0 warms up
            run_id = f"latency-{round_}"
            system.spawn(announces_once, id=run_id).result(timeout=10)
            committed = time.perf_counter()
            deadline = committed + 10
            while f"{run_id}:1" not in stamped.accepted:
                if time.perf_counter() > deadline:
                    raise RuntimeError("the message never reached the broker")
                time.sleep(0.0002)
            if round_ > 0:
                found.append(stamped.accepted[f"{run_id}:1"] - committed)
            time.sleep(0.02)  # the relay idle again, as between real commits
    _close(stamped.inner)
    return found


def _close(sink: Sink) -> None:
    close: Callable[[], None] | None = getattr(sink, "close", None)
    if close is not None:
        close()


def rows_for(broker: Broker, scratch: str, count: int, rounds: int) -> list[bench.Row]:
    relay_rate, sample = relayed(broker, f"{scratch}/throughput", count)
    bare_rate = broker.bare(sample * (count // len(sample)))
    waits = latencies(broker, f"{scratch}/latency", rounds)
    p90 = sorted(waits)[int(0.9 * len(waits))]
    return [
        bench.Row(
            f"outbox relay to {broker.name}, {count:,} messages: msgs/s vs bare loop",
            relay_rate,
            "msgs/s",
            bare_rate,
            "bare publish",
            TARGET,
        ),
        bench.Row(
            f"{broker.name}: commit -> accepted by the server, median of {rounds}",
            statistics.median(waits),
            "s",
            None,
            "",
            None,
            detail=f"p90 {bench.figure(p90, 's')}",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    count, rounds = (500, 5) if args.quick else (5000, 50)
    tag = uuid.uuid4().hex[:10]
    rows: list[bench.Row] = []
    notes: list[str] = []
    for make in (Redis, Nats):
        try:
            broker = make(tag)
        except Exception as error:  # a server that does not answer: left out
            notes.append(f"{make.name}: left out, no server ({error!r})")
            continue
        try:
            with tempfile.TemporaryDirectory() as scratch:
                rows += rows_for(broker, scratch, count, rounds)
        finally:
            broker.clean()
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print(f"outbox benchmark, {now}\n")
    print("\n".join(bench.table(rows)))
    for note in notes:
        print(f"* {note}")
    return 0 if rows else 2


if __name__ == "__main__":
    sys.exit(main())
