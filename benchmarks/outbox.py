"""The outbox's relay against a bare publish loop of the same client (issue 15).

    .venv/bin/python benchmarks/outbox.py            # Redis on 127.0.0.1:6379
    .venv/bin/python benchmarks/outbox.py --quick    # smoke run

Side by side in one run, on a fresh LMDB journal in a temporary directory:

- **bare**: one thread calls redis-py's ``XADD`` for each message, one after
  another (the same envelope, no dedupe): what the client alone does;
- **relay**: the same number of messages, published by runs (``ctx.publish``)
  beforehand, delivered by ``Relay.deliver`` from the journal to the same
  server with ``RedisStreamSink`` (each ``XADD`` behind its ``SET NX`` dedupe
  key, the position tracked every 32 messages): messages/s over the whole
  drain, the journal's reads included; the target is >= 0.5x the bare loop;
- **latency**: a run publishes one message while the relay service runs
  (``system.relay(sink, poll=...)``); from the commit that carried it (the
  run's result is available: the message is durable) to its arrival in the
  stream, read by a blocking ``XREAD``; the median over the rounds. The relay
  looks for new messages every ``poll`` seconds once caught up, so the median
  is about half of it plus a delivery.

The server: ``--url``, else ``CHRONIK_REDIS_URL``, else redis://127.0.0.1:6379/0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
sys.path.insert(0, str(_REPO))

# isort: split

import redis  # noqa: E402

from actors import (  # noqa: E402
    ActorSystem,
    OutboxMessage,
    RedisStreamSink,
    Relay,
    WorkflowContext,
    workflow,
)
from actors._sinks import envelope  # noqa: E402
from benchmarks import workflows as bench  # noqa: E402

TARGET = bench.Target(0.5, at_least=True, on_ratio=True)


@workflow(name="benchmarks.outbox:announces")
async def announces(ctx: WorkflowContext, count: int) -> int:
    for n in range(count):
        ctx.publish("bench.announced", {"n": n, "text": "x" * 64}, key=f"k{n % 8}")
    return count


@workflow(name="benchmarks.outbox:announces_once")
async def announces_once(ctx: WorkflowContext) -> None:
    ctx.publish("bench.once", {"at": "now"})


def bare(client: redis.Redis, stream: str, messages: Sequence[OutboxMessage]) -> float:
    began = time.perf_counter()
    for message in messages:
        client.xadd(stream, envelope(message))  # type: ignore[arg-type]
    return len(messages) / (time.perf_counter() - began)


def relayed(
    url: str, journal: str, count: int, stream: str
) -> tuple[float, list[OutboxMessage]]:
    runs = 50
    with ActorSystem.open(journal) as system:
        for run in range(runs):
            system.spawn(announces, count // runs, id=f"bench-{run}").result(timeout=60)
        sink = RedisStreamSink(url, stream=stream, dedupe_prefix=f"{stream}:seen:")
        relay = Relay(system._app, system._app.factory.process_recorder(), sink)
        sample = relay.pending()
        began = time.perf_counter()
        sent = 0
        while (done := relay.deliver()) > 0:
            sent += done
        seconds = time.perf_counter() - began
        sink.close()
    return sent / seconds, sample


def latencies(
    url: str, journal: str, rounds: int, poll: float, stream: str
) -> list[float]:
    reader = redis.Redis.from_url(url)
    found: list[float] = []
    with ActorSystem.open(journal) as system:
        sink = RedisStreamSink(url, stream=stream, dedupe_prefix=f"{stream}:seen:")
        system.relay(sink, poll=poll)
        last = "$"
        for round_ in range(rounds + 1):  # round 0 warms up
            arrived = threading.Event()
            stamp: list[float] = []
            thread = threading.Thread(
                target=_read_one,
                args=(reader, stream, last, stamp, arrived),
                daemon=True,
            )
            thread.start()
            time.sleep(0.05)  # the reader blocks in XREAD first
            system.spawn(announces_once, id=f"latency-{round_}").result(timeout=10)
            committed = time.perf_counter()
            assert arrived.wait(10), "the message never reached the stream"
            thread.join()
            ((newest, _),) = reader.xrevrange(stream, count=1) or [(None, None)]
            last = newest.decode() if isinstance(newest, bytes) else str(newest)
            if round_ > 0:
                found.append(stamp[0] - committed)
        sink.close()
    reader.close()
    return found


def _read_one(
    reader: redis.Redis,
    stream: str,
    since: str,
    stamp: list[float],
    arrived: threading.Event,
) -> None:
    """Block until an entry after ``since`` is in ``stream``; stamp its arrival."""
    reader.xread({stream: since}, block=10_000, count=1)
    stamp.append(time.perf_counter())
    arrived.set()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--url", default=os.environ.get("CHRONIK_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--poll", type=float, default=0.05)
    args = parser.parse_args(argv)
    count, rounds = (500, 5) if args.quick else (5000, 30)
    client = redis.Redis.from_url(args.url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as error:
        print(f"no Redis server at {args.url}: {error}", file=sys.stderr)
        return 2
    tag = uuid.uuid4().hex[:10]
    streams = [f"chronik-bench:{tag}:{what}" for what in ("bare", "relay", "latency")]
    try:
        with tempfile.TemporaryDirectory() as scratch:
            relay_rate, sample = relayed(args.url, f"{scratch}/j1", count, streams[1])
            bare_rate = bare(client, streams[0], sample * (count // len(sample)))
            waits = latencies(args.url, f"{scratch}/j2", rounds, args.poll, streams[2])
    finally:
        for stream in streams:
            client.delete(stream)
        for key in client.scan_iter(match=f"chronik-bench:{tag}:*"):
            client.delete(key)
        client.close()
    rows = [
        bench.Row(
            f"outbox relay to Redis Streams, {count:,} messages: msgs/s vs bare XADD",
            relay_rate,
            "msgs/s",
            bare_rate,
            "bare XADD",
            TARGET,
        ),
        bench.Row(
            f"commit -> in the stream, median of {rounds} (poll {args.poll:g} s)",
            statistics.median(waits),
            "s",
            None,
            "",
            None,
            detail=f"p90 {bench.figure(sorted(waits)[int(0.9 * len(waits))], 's')}",
        ),
    ]
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print(f"Redis at {args.url}, {now}\n")
    print("\n".join(bench.table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
