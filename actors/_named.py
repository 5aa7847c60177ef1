"""``NamedActors``: a system's plain actors and services, by name.

The part of ``ActorSystem`` that keeps non-durable actors alive under its
supervision tree (``service``, ``spawn_actor``) and finds them by name (``actor``).
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pykka

from actors._errors import DuplicateActorError, UnknownActorError
from supervision import (
    Backoff,
    ChildSpec,
    DuplicateChildError,
    Restart,
    SupervisedRef,
    Supervisor,
    SupervisorFlags,
    SupervisorInfo,
    SupervisorRef,
)

__all__ = ["NamedActors"]


class NamedActors:
    """Mixed into ``ActorSystem``, which gives it ``_supervisor`` (the root of the
    tree, with ``actors`` and ``services`` under it) and ``_check_open``."""

    _supervisor: SupervisorRef

    def __init__(self) -> None:
        self._names: dict[str, tuple[str, ...]] = {}  # actor name -> tree path
        self._names_lock = threading.Lock()
        self._waiting: dict[str, ChildSpec] = {}  # services not started yet
        self._actor_numbers = itertools.count(1)

    def _check_open(self) -> None:
        raise NotImplementedError

    def service(
        self,
        name: str,
        actor_class: type[pykka.ThreadingActor],
        *args: Any,
        auto_start: bool = True,
        restart: Restart = Restart.PERMANENT,
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
        shutdown: float | None = 5.0,
        **kwargs: Any,
    ) -> SupervisedRef:
        """Keep ``actor_class(*args, **kwargs)`` alive under the system, by name.

        It gets a supervisor of its own: restarted by ``restart`` at most
        ``max_restarts`` times in ``period`` seconds (after ``backoff`` pauses),
        past which the failure escalates and stops the system
        (``SystemFailedError``). The ref stays valid across restarts; with
        ``auto_start=False`` the service starts at ``start_service(name)``.
        """
        self._check_open()
        actor = ChildSpec.for_actor(
            name,
            actor_class,
            args=args,
            kwargs=kwargs,
            restart=restart,
            shutdown=shutdown,
        )
        flags = SupervisorFlags(
            max_restarts=max_restarts, period=period, backoff=backoff
        )
        spec = Supervisor.child_spec(name, (actor,), flags)
        ref = self._claim_name(name, ("services", name, name))
        if auto_start:
            self._start_named(name, "services", spec)
        else:
            self._waiting[name] = spec
        return ref

    def start_service(self, name: str) -> SupervisedRef:
        """Start the service ``name`` registered with ``auto_start=False``."""
        self._check_open()
        spec = self._waiting.pop(name, None)
        if spec is None:
            raise UnknownActorError(name, tuple(sorted(self._names)))
        self._start_named(name, "services", spec)
        return self.actor(name)

    def spawn_actor(
        self,
        actor_class: type[pykka.ThreadingActor],
        *args: Any,
        name: str | None = None,
        restart: Restart = Restart.TRANSIENT,
        shutdown: float | None = 5.0,
        **kwargs: Any,
    ) -> SupervisedRef:
        """Start a plain (not durable) actor under the system's ``actors``
        supervisor, restarted by ``restart``; reachable by ``name``."""
        self._check_open()
        if name is None:
            name = f"{actor_class.__name__}-{next(self._actor_numbers)}"
        spec = ChildSpec.for_actor(
            name,
            actor_class,
            args=args,
            kwargs=kwargs,
            restart=restart,
            shutdown=shutdown,
        )
        ref = self._claim_name(name, ("actors", name))
        self._start_named(name, "actors", spec)
        return ref

    def has_actor(self, name: str) -> bool:
        """Whether a service or plain actor is named ``name``."""
        return name in self._names

    def actor(self, name: str) -> SupervisedRef:
        """The service or plain actor ``name``: a ref valid across restarts."""
        self._check_open()
        path = self._names.get(name)
        if path is None:
            raise UnknownActorError(name, tuple(sorted(self._names)))
        return self._supervisor.child(*path)

    def tree(self) -> SupervisorInfo:
        """The live supervision tree: runs, plain actors and services, with
        restart counts and last failures, as frozen data."""
        return self._supervisor.tree()

    def format_tree(self) -> str:
        return self._supervisor.format_tree()

    def _claim_name(self, name: str, path: tuple[str, ...]) -> SupervisedRef:
        """Reserve ``name`` for the child at ``path``. A name taken under the
        same supervisor is that supervisor's to refuse (a plain actor that has
        exited for good has left it, and its name is free again)."""
        if not isinstance(name, str) or not name or "/" in name:
            msg = f"an actor name is a non-empty str without '/', not {name!r}"
            raise ValueError(msg)
        with self._names_lock:
            taken = self._names.get(name)
            if taken is not None and (taken[0] != path[0] or name in self._waiting):
                raise DuplicateActorError(name)
            self._names[name] = path
        return self._supervisor.child(*path)

    def _start_named(self, name: str, under: str, spec: ChildSpec) -> None:
        try:
            self._supervisor.supervisor(under).start_child(spec)
        except DuplicateChildError:
            raise DuplicateActorError(name) from None  # it keeps its name
        except BaseException:
            with self._names_lock:
                del self._names[name]
            raise
