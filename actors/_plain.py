"""``Actor``: a plain (not durable) actor that takes a topic and a payload.

From the caller's side a plain actor and a workflow run are addressed alike:
``ref.send(topic, payload)`` on either kind of ref, ``system.send(name, topic,
payload)``, and ``system.spawn(name, ...)`` starts whichever the name defines. A
workflow run records the message as a signal (durable, then answered with its
id); a plain actor's ``receive(topic, payload)`` handles it in memory and its
return value is the answer. A subclass with a ``name`` is registered under it,
so ``spawn`` finds it by that name::

    class Greeter(Actor):
        name = "greeter"

        def receive(self, topic: str, payload: Any) -> Any:
            return f"{topic}, {payload}!"

    ref = system.spawn("greeter", id="greeter-1")
    ref.send("hello", "world")  # -> "hello, world!"
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import pykka

from supervision import Message

__all__ = ["Actor", "registered_actor"]

_registry: dict[str, type[Actor]] = {}
_registry_lock = threading.Lock()


class Actor(pykka.ThreadingActor):
    """Subclass and write ``receive``; give it a ``name`` to spawn it by name.
    Other messages reach pykka's ``on_receive`` as usual."""

    name: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None:
            return
        if not isinstance(name, str) or not name or "/" in name:
            msg = f"{cls.__qualname__}.name must be a non-empty str without '/'"
            raise TypeError(msg)
        with _registry_lock:
            _registry[name] = cls  # a redefinition replaces the last

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Message):
            return self.receive(message.topic, message.payload)
        return super().on_receive(message)

    def receive(self, topic: str, payload: Any) -> Any:
        """Handle ``topic`` with ``payload``; what it returns answers ``send``."""
        msg = f"{type(self).__qualname__} takes no messages: it defines no receive()"
        raise NotImplementedError(msg)


def registered_actor(name: str) -> type[Actor] | None:
    """The ``Actor`` subclass registered under ``name``, if any."""
    with _registry_lock:
        return _registry.get(name)
