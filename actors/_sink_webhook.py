"""The outbox's HTTP webhook sink (httpx): each message POSTed to a receiver.

The body is the JSON of the envelope every shipped sink puts on the wire
(``actors._sinks.envelope``); the headers carry the message's id as
``Idempotency-Key`` (the relay delivers at least once: a receiver drops repeats
by it), its topic and id, and, given a ``secret``, ``X-Chronik-Signature:
sha256=<hex HMAC-SHA256 of the body>`` so the receiver can check the sender.

The receiver's answer decides what the relay does: a 2xx accepts the message;
408, 425, 429 and any 5xx, like a connection that fails or times out, say the
receiver cannot take it now (``SinkUnavailableError``: the relay waits and tries
again, and never dead-letters for it); any other status refuses this message
(``WebhookRefusedError``: tried again, then dead-lettered).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import quote

from actors._errors import SinkUnavailableError, WebhookRefusedError
from actors._outbox import OutboxMessage
from actors._sinks import envelope

__all__ = ["WebhookSink"]

_NOT_NOW: Final = frozenset({408, 425, 429})  # timeout, too early, too many
_BODY_SHOWN: Final = 500  # characters of a refusal's answer kept in the error


class WebhookSink:
    """Messages POSTed to a webhook: ``url`` is the receiver's (a str: one for
    all; a function of the message: e.g. by topic); ``headers`` are added to
    every request (e.g. authorization). The ``name`` (which the relay tracks
    its position under) is by default ``"webhook:<url>"``: pass ``name`` where
    the URL holds a secret (the name shows in logs)."""

    def __init__(
        self,
        url: str | Callable[[OutboxMessage], str],
        *,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        secret: bytes | None = None,
    ) -> None:
        import httpx  # noqa: PLC0415 (optional: pip install 'chronik[webhook]')

        if name is None and isinstance(url, str):
            name = f"webhook:{url}"
        self.name = name or "webhook"
        self._url = url
        self._secret = secret
        self._lock = threading.Lock()  # one request at a time on the client
        self._client = httpx.Client(headers=dict(headers or {}), timeout=timeout)

    def send(self, message: OutboxMessage) -> None:
        import httpx  # noqa: PLC0415 (optional, and imported by __init__ already)

        url = self._url if isinstance(self._url, str) else self._url(message)
        body = json.dumps(envelope(message)).encode()
        try:
            with self._lock:
                response = self._client.post(
                    url, content=body, headers=self._headers(message, body)
                )
        except httpx.TransportError as out:
            reason = f"{type(out).__name__}: {out}"
            raise SinkUnavailableError(self.name, reason) from out
        self._judge(response.status_code, response.reason_phrase, response.text)

    def close(self) -> None:
        with self._lock:
            self._client.close()

    def _headers(self, message: OutboxMessage, body: bytes) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": _header_text(message.id),
            "X-Chronik-Topic": _header_text(message.topic),
            "X-Chronik-Message-Id": _header_text(message.id),
        }
        if self._secret is not None:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers["X-Chronik-Signature"] = f"sha256={digest}"
        return headers

    def _judge(self, status: int, reason: str, text: str) -> None:
        """Return if the receiver accepted; else raise what its answer means."""
        if 200 <= status < 300:
            return
        if status in _NOT_NOW or status >= 500:
            why = f"the receiver answered HTTP {status} {reason} (not now)"
            raise SinkUnavailableError(self.name, why)
        raise WebhookRefusedError(self.name, status, text[:_BODY_SHOWN])


def _header_text(text: str) -> str:
    """``text`` as a header value: as it is if printable ASCII, else
    percent-encoded (the body holds it as it is)."""
    return text if text.isascii() and text.isprintable() else quote(text, safe="")
