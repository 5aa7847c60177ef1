"""The outbox's NATS JetStream sink: each message into a JetStream stream, once.

``NatsJetStreamSink`` publishes the shipped envelope (``actors._sinks.envelope``,
as JSON) with the message's id as its ``Nats-Msg-Id`` header: JetStream keeps
one copy of a message id within the stream's duplicate window, so the relay's
at-least-once is once-only in the stream. The publish returns once the stream
has stored the message (its acknowledgement).

nats-py speaks asyncio only, and the relay calls ``send`` from a thread: the
sink owns an event loop on a daemon thread and runs each publish there, waiting
at most ``timeout`` seconds. It connects on the first ``send``; a connection
that fails is dropped, and the next ``send`` connects anew (nats-py's own
reconnecting is off: the relay's pause between tries is the backoff, and an
outage shows at once as ``SinkUnavailableError`` rather than as publishes
buffered for later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from actors._errors import SinkUnavailableError
from actors._outbox import OutboxMessage
from actors._sinks import envelope

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

__all__ = ["NatsJetStreamSink"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


def _default_subject(message: OutboxMessage) -> str:
    return "chronik.outbox." + message.topic


class NatsJetStreamSink:
    """Messages into the JetStream stream ``stream``: ``subject`` names the
    subject of a message (a str: one for all; a function of the message; by
    default ``"chronik.outbox." + topic``). With ``create_stream`` the sink
    creates the stream on connecting, or adds ``stream_subjects`` to it. The
    ``name`` (the relay's tracking key) is ``"nats:<stream>"`` by default."""

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        subject: str | Callable[[OutboxMessage], str] = _default_subject,
        stream: str = "chronik-outbox",
        create_stream: bool = False,
        stream_subjects: Sequence[str] = ("chronik.outbox.>",),
        name: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        import nats  # noqa: PLC0415 (optional: pip install 'chronik[nats]')

        if not timeout > 0:
            raise ValueError(f"timeout must be seconds > 0, not {timeout!r}")
        if create_stream and not stream_subjects:
            raise ValueError(
                "create_stream needs stream_subjects, the stream's subjects"
            )
        # Not the url: a service id holds no "/" (a stream name never does), the
        # stream is what the relay's position is about, and a url may hold a password.
        self.name = name or f"nats:{stream}"
        self._url = url
        self._subject = subject
        self._stream = stream
        self._stream_subjects = list(stream_subjects) if create_stream else []
        self._timeout = timeout
        # Errors that say the server is out of reach, not that it refused:
        # TimeoutError (asyncio's and nats-py's too) is an OSError.
        self._outages: tuple[type[BaseException], ...] = (
            OSError,
            nats.errors.ConnectionClosedError,
            nats.errors.ConnectionDrainingError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.NoServersError,
            nats.errors.NoRespondersError,
            nats.errors.OutboundBufferLimitError,
            nats.errors.StaleConnectionError,
            nats.js.errors.NoStreamResponseError,
        )
        # Invariant: _client and _stream_ready are touched on the loop's thread only.
        self._client: Client | None = None
        self._stream_ready = not create_stream
        self._connecting = asyncio.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"chronik {self.name}", daemon=True
        )
        self._thread.start()

    def send(self, message: OutboxMessage) -> None:
        self._run(self._publish(*self._wire(message)))

    def send_many(self, messages: Sequence[OutboxMessage]) -> int:
        """Publish ``messages`` in order on the one connection (so the stream
        keeps their order), the acks awaited together; how many of the first
        were accepted. ``SinkUnavailableError`` if the first was not sent."""
        results = self._run(self._publish_many([self._wire(m) for m in messages]))
        for index, result in enumerate(results):
            if isinstance(result, BaseException):
                if index == 0:
                    raise result
                return index
        return len(results)

    def _wire(self, message: OutboxMessage) -> tuple[str, bytes, dict[str, str]]:
        subject = self._subject
        if not isinstance(subject, str):
            subject = subject(message)
        body = json.dumps(envelope(message)).encode("utf-8")
        headers = {"Nats-Msg-Id": message.id, "Chronik-Topic": message.topic}
        return subject, body, headers

    def close(self) -> None:
        """Close the connection and stop the sink's loop; ``send`` fails after."""
        if self._loop.is_closed():
            return
        with contextlib.suppress(SinkUnavailableError):
            self._run(self._drop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self._timeout)
        if not self._thread.is_alive():
            self._loop.close()

    # -- on the caller's thread --------------------------------------------------

    def _run(self, work: Coroutine[Any, Any, _T]) -> _T:
        """The result of ``work``, run on the sink's loop. The coroutines keep
        to ``timeout`` themselves; this wait is a backstop for a stuck loop."""
        if self._loop.is_closed():
            work.close()
            raise SinkUnavailableError(self.name, "the sink is closed")
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(self._timeout * 2 + 1)
        except TimeoutError as out:
            future.cancel()
            raise SinkUnavailableError(self.name, "no answer in time") from out

    # -- on the loop's thread ----------------------------------------------------

    async def _publish(
        self, subject: str, body: bytes, headers: dict[str, str]
    ) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                js = await self._jetstream()
                await js.publish(subject, body, stream=self._stream, headers=headers)
        except self._outages as out:
            await self._drop()  # whatever state it is in: the next send connects anew
            raise SinkUnavailableError(self.name, self._reason(out, subject)) from out

    async def _publish_many(
        self, wires: Sequence[tuple[str, bytes, dict[str, str]]]
    ) -> list[BaseException | None]:
        try:
            async with asyncio.timeout(self._timeout):
                js = await self._jetstream()
                # Tasks start in creation order, each sending its request at
                # once: the server gets them in this order.
                tasks = [
                    asyncio.ensure_future(
                        js.publish(subject, body, stream=self._stream, headers=headers)
                    )
                    for subject, body, headers in wires
                ]
                answers = await asyncio.gather(*tasks, return_exceptions=True)
        except self._outages as out:
            await self._drop()
            raise SinkUnavailableError(
                self.name, self._reason(out, wires[0][0])
            ) from out
        results: list[BaseException | None] = []
        for (subject, _, _), answer in zip(wires, answers, strict=True):
            if isinstance(answer, self._outages):
                await self._drop()  # the next batch connects anew
                reason = self._reason(answer, subject)
                results.append(SinkUnavailableError(self.name, reason))
            else:
                results.append(answer if isinstance(answer, BaseException) else None)
        return results

    async def _jetstream(self) -> JetStreamContext:
        async with self._connecting:
            if self._client is None or self._client.is_closed:
                self._client = await self._connect()
            js = self._client.jetstream(timeout=self._timeout)
            if not self._stream_ready:
                await self._ensure_stream(js)
                self._stream_ready = True
            return js

    async def _connect(self) -> Client:
        import nats.aio.client  # noqa: PLC0415 (optional, imported by __init__ already)

        client = nats.aio.client.Client()
        options: dict[str, Any] = {
            "name": self.name,
            "allow_reconnect": False,
            "connect_timeout": self._timeout,
            # nats-py tries a server max_reconnect_attempts + 1 times even when
            # it may not reconnect: two tries, no pause between.
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0,
            "error_cb": self._on_error,
        }
        try:
            await client.connect(self._url, **options)
        except BaseException:
            await self._close_quietly(client)
            raise
        return client

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        """Create the stream, or add the subjects it lacks; refusals propagate."""
        import nats  # noqa: PLC0415 (optional, and imported by __init__ already)

        try:
            info = await js.stream_info(self._stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(name=self._stream, subjects=self._stream_subjects)
            return
        subjects = list(info.config.subjects or [])
        missing = [s for s in self._stream_subjects if s not in subjects]
        if missing:
            await js.update_stream(info.config.evolve(subjects=subjects + missing))

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._close_quietly(client)

    async def _close_quietly(self, client: Client) -> None:
        # The connection is being given up: how its closing goes changes nothing.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), self._timeout)

    async def _on_error(self, error: Exception) -> None:
        # nats-py reports connection errors here as well as raising them to the
        # caller; the relay logs the outage, so these are only details.
        logger.debug("outbox %s: nats: %r", self.name, error)

    def _reason(self, error: BaseException, subject: str) -> str:
        import nats  # noqa: PLC0415 (optional, and imported by __init__ already)

        if isinstance(
            error, nats.errors.NoRespondersError | nats.js.errors.NoStreamResponseError
        ):
            return (
                f"no JetStream stream answers on subject {subject!r} (is JetStream "
                f"enabled there, with stream {self._stream!r} covering the subject?)"
            )
        return str(error) or type(error).__name__
