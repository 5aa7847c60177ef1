"""Sinks for the outbox's relay (``actors._outbox``), each for a real server.

A sink is any object with a ``name`` and a ``send(message)`` that returns once
the server has accepted the message and raises otherwise; these are the ones
chronik ships. Each puts the same envelope on the wire: the message's id,
topic, key, run id, position, publishing time and its payload as JSON
(``json_payload``: datetimes, UUIDs and Decimals as strings, bytes as base64; a
payload JSON cannot carry is refused, so the relay dead-letters it).

``RedisStreamSink`` (redis-py) appends to a Redis stream with ``XADD``, and only
if the message's id was not seen in the last ``dedupe_seconds`` (a ``SET NX``
key in the same server-side script): the relay's at-least-once becomes
once-only in the stream within that window.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from actors._errors import SinkUnavailableError
from actors._outbox import OutboxMessage

__all__ = ["RedisStreamSink", "envelope", "json_payload"]

_ADD_ONCE: Final = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
    return redis.call('XADD', KEYS[1], unpack(ARGV, 2))
end
return false
"""


def json_payload(payload: Any) -> str:
    """``payload`` as JSON text; ``TypeError`` for what JSON cannot carry."""
    return json.dumps(payload, default=_json_default, allow_nan=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(
        f"a message payload holds a {type(value).__name__}, which JSON cannot carry"
    )


def envelope(message: OutboxMessage) -> dict[str, str]:
    """The fields every shipped sink puts on the wire (all text)."""
    return {
        "id": message.id,
        "topic": message.topic,
        "key": message.key or "",
        "run_id": message.run_id,
        "position": str(message.position),
        "published_at": message.published_at.isoformat(),
        "payload": json_payload(message.payload),
    }


class RedisStreamSink:
    """Messages into Redis streams: ``stream`` names the stream of a message
    (a str: one stream for all; a function of the message: e.g. by topic)."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str | Callable[[OutboxMessage], str] = "chronik:outbox",
        name: str | None = None,
        dedupe_seconds: int = 24 * 3600,
        dedupe_prefix: str = "chronik:outbox:seen:",
        timeout: float = 5.0,
    ) -> None:
        import redis  # noqa: PLC0415 (optional: pip install 'chronik[redis]')

        if dedupe_seconds < 1:
            raise ValueError(f"dedupe_seconds must be at least 1, not {dedupe_seconds}")
        self.name = name or (f"redis:{stream}" if isinstance(stream, str) else "redis")
        self._stream = stream
        self._dedupe_seconds = dedupe_seconds
        self._dedupe_prefix = dedupe_prefix
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._add_once = self._client.register_script(_ADD_ONCE)
        # Why the server refused a message (send raises it).
        self._failures: dict[str, Exception] = {}

    def send(self, message: OutboxMessage) -> None:
        if self.send_many([message]) == 0:
            raise self._failures.pop(message.id)

    def send_many(self, messages: Sequence[OutboxMessage]) -> int:
        """Append ``messages`` in order in one round trip (a pipeline of the
        script); how many of the first were accepted (``send`` raises why the
        next was not)."""
        import redis  # noqa: PLC0415 (optional, and imported by __init__ already)

        self._failures.clear()
        pipe = self._client.pipeline(transaction=False)
        count = 0
        for message in messages:
            try:
                keys, args = self._call(message)
            except (TypeError, ValueError) as refused:  # JSON cannot carry it
                self._failures[message.id] = refused
                break
            self._add_once(keys=keys, args=args, client=pipe)
            count += 1
        if not count:
            return 0
        try:
            answers = pipe.execute(raise_on_error=False)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as out:
            raise SinkUnavailableError(self.name, str(out)) from out
        for index, answer in enumerate(answers):
            if isinstance(answer, Exception):
                self._failures[messages[index].id] = answer
                return index
        return count

    def _call(self, message: OutboxMessage) -> tuple[list[str], list[Any]]:
        stream = self._stream
        if not isinstance(stream, str):
            stream = stream(message)
        fields = [item for pair in envelope(message).items() for item in pair]
        keys = [stream, self._dedupe_prefix + message.id]
        return keys, [self._dedupe_seconds, "*", *fields]

    def close(self) -> None:
        self._client.close()
