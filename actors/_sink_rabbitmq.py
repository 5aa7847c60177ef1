"""The outbox's RabbitMQ sink: messages published with publisher confirms.

``RabbitMQSink`` (pika's ``BlockingConnection``) publishes each message's
envelope (``actors._sinks.envelope``) as a persistent JSON message and returns
only once the broker confirmed it. A message the broker refuses raises pika's
``UnroutableError`` (``mandatory`` and no queue bound for its routing key) or
``NackError``: the relay counts those as attempts and dead-letters the message
after its last one. A broker that cannot be reached raises
``SinkUnavailableError``: the relay keeps the message and tries again later.

RabbitMQ has no server-side dedupe: a message the relay hands over again (after
a crash, or when the broker's confirm was lost with the connection) is queued
again. Its ``message_id`` property is the outbox message's id, the same on
every delivery, so consumers drop repeats by it (at least once).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

from actors._errors import SinkUnavailableError
from actors._outbox import OutboxMessage
from actors._sinks import envelope

__all__ = ["RabbitMQSink"]


def _topic(message: OutboxMessage) -> str:
    return message.topic


class RabbitMQSink:
    """Messages into a RabbitMQ exchange (``""``: the default exchange, where a
    routing key names a queue). ``routing_key`` is a str (the same for all) or a
    function of the message; by default the message's topic."""

    def __init__(
        self,
        url: str = "amqp://guest:guest@127.0.0.1:5672/%2F",
        *,
        exchange: str = "",
        routing_key: str | Callable[[OutboxMessage], str] = _topic,
        name: str | None = None,
        mandatory: bool = True,
        timeout: float = 5.0,
    ) -> None:
        import pika  # noqa: PLC0415 (optional: pip install 'chronik[rabbitmq]')

        self.name = name or f"rabbitmq:{exchange or 'default'}"
        self._exchange = exchange
        self._routing_key = routing_key
        self._mandatory = mandatory
        self._parameters = pika.URLParameters(url)
        self._parameters.socket_timeout = timeout
        self._parameters.stack_timeout = timeout
        self._parameters.blocked_connection_timeout = timeout
        # Invariant: _channel is None whenever _connection is (both guarded
        # by _lock: a BlockingConnection is not thread-safe).
        self._lock = threading.Lock()
        self._connection: Any = None
        self._channel: Any = None

    def send(self, message: OutboxMessage) -> None:
        import pika  # noqa: PLC0415 (optional, and imported by __init__ already)

        routing_key = self._routing_key
        if not isinstance(routing_key, str):
            routing_key = routing_key(message)
        fields = envelope(message)  # a payload JSON cannot carry: refused here
        body = json.dumps(fields).encode()
        properties = pika.BasicProperties(
            message_id=message.id,
            content_type="application/json",
            delivery_mode=2,  # persistent
            headers={key: fields[key] for key in ("topic", "key", "run_id")},
            timestamp=int(message.published_at.timestamp()),
        )
        with self._lock:
            try:
                self._open().basic_publish(
                    self._exchange,
                    routing_key,
                    body,
                    properties,
                    mandatory=self._mandatory,
                )
            except pika.exceptions.ChannelWrongStateError as out:
                if self._connection is not None and self._connection.is_open:
                    self._channel = None  # a refusal; the next send opens another
                    raise
                self._unavailable(out)
            except (pika.exceptions.AMQPConnectionError, OSError) as out:
                # socket.timeout is an OSError (TimeoutError) since Python 3.10.
                self._unavailable(out)
            except pika.exceptions.AMQPChannelError:
                # The broker's refusal (UnroutableError, NackError) or a channel
                # it closed (ChannelClosedByBroker): the message's fault.
                if self._channel is not None and self._channel.is_closed:
                    self._channel = None
                raise

    def close(self) -> None:
        with self._lock:
            self._drop()

    # -- internals ---------------------------------------------------------------

    def _open(self) -> Any:
        """The channel, in confirm mode, on a live connection (made if need be)."""
        import pika  # noqa: PLC0415 (optional, and imported by __init__ already)

        if self._connection is not None:
            try:
                # Handles heartbeats and notices a connection the broker dropped
                # while this sink sat idle, so that is not taken for an outage.
                self._connection.process_data_events(time_limit=0)
            except (pika.exceptions.AMQPError, OSError):
                self._drop()
        if self._connection is None or not self._connection.is_open:
            self._drop()
            self._connection = pika.BlockingConnection(self._parameters)
        if self._channel is None or not self._channel.is_open:
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def _unavailable(self, error: BaseException) -> None:
        self._drop()  # broken: the next send connects again
        reason = str(error) or type(error).__name__
        raise SinkUnavailableError(self.name, reason) from error

    def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):  # it is going anyway
                connection.close()
