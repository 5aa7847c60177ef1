"""Subprocess: relay a journal's messages to a Redis stream, slowly, until killed.

``python -m tests.actors._relay_child JOURNAL REDIS_URL STREAM``; the parent
SIGKILLs it mid-delivery (``test_outbox_redis``)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence

from actors import (
    ActorSystem,
    OutboxMessage,
    RedisStreamSink,
    WorkflowContext,
    workflow,
)


@workflow
async def announces(ctx: WorkflowContext, count: int) -> int:
    for n in range(count):
        ctx.publish("announcement", {"n": n}, key="one-key")
    return count


class SlowRedisStreamSink(RedisStreamSink):
    """Each message takes 20 ms, one at a time: a kill lands between two."""

    def send_many(self, messages: Sequence[OutboxMessage]) -> int:
        accepted = super().send_many(messages[:1])
        time.sleep(0.02)
        return accepted


if __name__ == "__main__":
    journal, url, stream = sys.argv[1:4]
    with ActorSystem.open(journal) as system:
        sink = SlowRedisStreamSink(url, stream=stream, dedupe_prefix=f"{stream}:seen:")
        system.relay(sink, poll=0.05)
        threading.Event().wait()  # until killed
