"""Refs that outlive restarts: a ``SupervisedRef`` names a child by its path in
the tree and resolves, at each send, the incarnation running now, like a
registered name in Erlang. A ``SupervisorRef`` adds a supervisor's operations."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pykka

from supervision._clock import Clock
from supervision._errors import (
    ChildStartError,
    ChildUnavailableError,
    UnsupervisedActorError,
)
from supervision._info import SupervisorInfo
from supervision._link import Link, offering
from supervision._messages import AbandonChild, AdoptChild, StartChild, TerminateChild
from supervision._spec import ChildSpec, SupervisorFlags
from supervision._supervisor import EscalationHandler, Supervisor
from supervision._tree import Handle, Path, Tree

__all__ = [
    "FIRST_START_WAIT",
    "Message",
    "SupervisedRef",
    "SupervisorRef",
    "start_supervisor",
]


@attrs.frozen
class Message:
    """A topic and a payload: what ``SupervisedRef.send`` delivers to an actor
    (a workflow run's ref sends the same two as a signal)."""

    topic: str
    payload: Any = None


# Seconds a tell waits for a child's first incarnation while its supervisor
# starts it (asynchronously: a nested supervisor starts its children in its own
# on_start), so a ref handed back at a start may be told at once. A child that
# never starts gets ChildUnavailableError after it, never a hang.
FIRST_START_WAIT = 5.0


class SupervisedRef:
    def __init__(self, tree: Tree, path: Path) -> None:
        self._tree = tree
        self._path = path

    @property
    def path(self) -> Path:
        """Child ids from the root down (empty for the root)."""
        return self._path

    @property
    def name(self) -> str:
        return self._tree.name_of(self._path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SupervisedRef):
            return NotImplemented
        return self._tree is other._tree and self._path == other._path

    def __hash__(self) -> int:
        return hash((id(self._tree), self._path))

    def current(self) -> pykka.ActorRef[Any] | None:
        """The pykka ref of the incarnation running now, if any (it changes)."""
        return self._tree.current(self._path)

    def is_alive(self) -> bool:
        ref = self.current()
        return ref is not None and ref.is_alive()

    def tell(self, message: Any, *, wait: float | None = None) -> None:
        """Send ``message`` to the current incarnation, waiting up to ``wait``
        seconds for one. At most once, as any tell: if that incarnation dies before
        handling it, the message is lost.

        A child whose first incarnation is still being started (a ref just
        returned by ``start_child``, or a child of a supervisor starting now) is
        waited for up to ``wait`` or ``FIRST_START_WAIT`` seconds, whichever is
        longer, so a fresh ref may be told at once; one that is restarting only
        up to ``wait`` (default 0: not at all).

        Raises ``ChildUnavailableError`` when no incarnation takes it in time."""
        now = time.monotonic()
        deadline = now + (wait or 0.0)
        first_deadline = now + max(wait or 0.0, FIRST_START_WAIT)
        stale: pykka.ActorRef[Any] | None = None
        while True:
            ref = self._tree.wait(self._path, stale, deadline, first_deadline)
            try:
                ref.tell(message)
            except pykka.ActorDeadError:
                stale = ref
            else:
                return

    def ask(self, message: Any, *, timeout: float = 5.0) -> Any:
        """Ask the current incarnation and return its reply, within ``timeout``
        seconds. A message that an incarnation never handled (it died first) is
        asked again of the next one, so a restart in between costs only time.

        Raises ``ChildUnavailableError`` when no incarnation comes up in time,
        ``pykka.Timeout`` when one took the message but did not reply in time,
        ``ActorCrashedError`` when it exited handling it, and whatever the
        handler raised."""
        deadline = time.monotonic() + timeout
        stale: pykka.ActorRef[Any] | None = None
        while True:
            ref = self._tree.wait(self._path, stale, deadline)
            future = ref.ask(message, block=False)
            try:
                return future.get(timeout=max(0.0, deadline - time.monotonic()))
            except pykka.ActorDeadError:
                if ref.is_alive():
                    raise  # the handler itself raised it: the message was handled
                stale = ref

    def send(self, topic: str, payload: Any = None, *, timeout: float = 30.0) -> Any:
        """Ask the actor to handle ``topic`` with ``payload`` (a ``Message``)
        and return its answer: the same call as a workflow run's ``send``.
        Errors as for ``ask``."""
        if not isinstance(topic, str) or not topic:
            msg = f"a message topic must be a non-empty str, not {topic!r}"
            raise TypeError(msg)
        return self.ask(Message(topic, payload), timeout=timeout)


class SupervisorRef(SupervisedRef):
    """A supervisor in a tree: the root, or a nested one (which, like any child,
    may restart: this ref follows it)."""

    @classmethod
    def of(cls, actor_ref: pykka.ActorRef[Supervisor]) -> SupervisorRef:
        """The ref of a supervisor started with ``Supervisor.start`` directly."""
        handle = Handle.of(actor_ref.actor_urn)
        if handle is None:
            msg = f"{actor_ref} is not a supervisor (or it is long gone)"
            raise TypeError(msg)
        return cls(handle.tree, handle.path)

    def child(self, *path: str) -> SupervisedRef:
        """The child at ``path`` below this supervisor (nested ids for nested
        supervisors). Valid before the child exists: sends wait for it."""
        return SupervisedRef(self._tree, (*self._path, *_ids(path)))

    def supervisor(self, *path: str) -> SupervisorRef:
        """The nested supervisor at ``path`` below this one."""
        return SupervisorRef(self._tree, (*self._path, *_ids(path)))

    def start_child(self, spec: ChildSpec, *, timeout: float = 5.0) -> SupervisedRef:
        """Add ``spec`` after the existing children and start it (OTP's
        ``start_child``). Raises ``DuplicateChildError`` or ``ChildStartError``;
        then nothing was added. Under simple_one_for_one, the id of a child that
        left (it will not restart) is free again."""
        self.ask(StartChild(spec), timeout=timeout)
        return self.child(spec.id)

    def adopt_child(self, spec: ChildSpec) -> pykka.ActorRef[Any]:
        """Add ``spec`` as ``start_child`` does, but start its first incarnation
        here, in the caller's thread, and return it without waiting for the
        supervisor, which restarts it as any child from then on. For many
        short-lived children started from busy threads (one per workflow run):
        no round trip to the supervisor's thread per child.

        The id must be new: the supervisor refuses a taken one and logs it, and
        the incarnation stops (``ChildUnavailableError`` if the refusal came
        before this returned). The child must not be a supervisor. Raises
        ``ChildUnavailableError`` if this supervisor is not running,
        ``ChildStartError`` or ``UnsupervisedActorError`` as ``start_child``
        (then nothing was added)."""
        supervisor = self.current()
        if supervisor is None:
            raise ChildUnavailableError(self.name, "this supervisor is not running")
        path = (*self._path, spec.id)
        self._tree.open(path)
        link = Link(self._tree, path, supervisor, 1)
        try:
            # First, so that the supervisor holds the child before its exit.
            self._tell_counted(supervisor, AdoptChild(spec, link))
        except pykka.ActorDeadError:
            link.started()
            raise ChildUnavailableError(
                self.name, "this supervisor is not running"
            ) from None
        try:
            with offering(link):
                ref = spec.start()
        except BaseException as error:  # the factory is user code
            self._abandon(link)
            raise ChildStartError(self.name, spec.id, error) from error
        if link.actor_ref is None or link.actor_ref is not ref:
            self._abandon(link, ref)
            returned = getattr(ref, "actor_class", type(ref)).__name__
            raise UnsupervisedActorError(self.name, spec.id, returned)
        if link.detached:  # the supervisor refused it meanwhile
            ref.stop(block=False)
            link.started()
            raise ChildUnavailableError(
                self.name, f"it could not adopt child {spec.id!r}"
            )
        return ref

    def _abandon(self, link: Link, returned: object = None) -> None:
        link.detach()
        for ref in (link.actor_ref, returned):
            if isinstance(ref, pykka.ActorRef):
                ref.stop(block=False)
                self._tree.clear_if(link.path, ref)
        link.started()
        with contextlib.suppress(pykka.ActorDeadError):
            message = AbandonChild(link.child_id, link.incarnation)
            self._tell_counted(link.supervisor, message)

    def _tell_counted(self, supervisor: pykka.ActorRef[Any], message: Any) -> None:
        """Tell one of the ``ACCOUNTED`` messages: counted in the tree's
        activity until the supervisor has handled it."""
        self._tree.activity.begin()
        try:
            supervisor.tell(message)
        except pykka.ActorDeadError:
            self._tree.activity.end()
            raise

    def terminate_child(self, child_id: str, *, timeout: float = 60.0) -> None:
        """Stop the child (within its shutdown timeout) and forget its spec.
        Raises ``UnknownChildError``."""
        self.ask(TerminateChild(child_id), timeout=timeout)

    def tree(self) -> SupervisorInfo:
        """The live tree below this supervisor, as frozen data."""
        info = self._tree.info(self._path)
        if info is None:
            raise ChildUnavailableError(self.name, "this supervisor is not running")
        return info

    def format_tree(self) -> str:
        return self.tree().format()

    def wait_quiet(self, timeout: float = 5.0) -> None:
        """Block until no failure, restart or start is in progress anywhere in this
        tree (a backoff pause still waiting is quiet). A test aid: after it, every
        running child has finished ``on_start`` and ``tree()`` is settled."""
        if not self._tree.activity.wait_quiet(timeout):
            msg = f"supervision tree {self._tree.name!r} still busy after {timeout:g} s"
            raise TimeoutError(msg)

    def stop(self, *, timeout: float | None = None) -> None:
        """Stop this supervisor; its children stop first, in reverse start order
        (all at once, in no particular order, under simple_one_for_one).
        Stopping a nested supervisor is a normal exit its parent may restart it
        from; stop the root to stop the tree. Stopping twice does nothing."""
        ref = self.current()
        if ref is not None:
            ref.stop(block=True, timeout=timeout)


def _ids(path: Sequence[str]) -> Path:
    if not path or not all(isinstance(part, str) and part for part in path):
        msg = f"a child path is one or more non-empty ids, not {tuple(path)!r}"
        raise ValueError(msg)
    return tuple(path)


def start_supervisor(
    children: Sequence[ChildSpec] = (),
    flags: SupervisorFlags | None = None,
    *,
    name: str = "root",
    clock: Clock | None = None,
    on_escalate: EscalationHandler | None = None,
    rng: Callable[[], float] | None = None,
) -> SupervisorRef:
    """Start a root supervisor and its children (asynchronously: use
    ``wait_quiet`` or an ``ask`` to wait for them). ``on_escalate(cause)`` is
    called when the root itself fails, after its children stopped."""
    options: dict[str, Any] = {"name": name, "clock": clock, "on_escalate": on_escalate}
    if rng is not None:
        options["rng"] = rng
    return SupervisorRef.of(Supervisor.start(tuple(children), flags, **options))
