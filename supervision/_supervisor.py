"""``Supervisor``: a pykka actor that starts, watches and restarts its children
by Erlang/OTP's rules, and fails to its own parent when they fail too often.

Starting is asynchronous, as in Akka and unlike OTP's ``init``: a child's factory
returns once its actor exists, and its ``on_start`` runs in its own thread while
the supervisor goes on (so a thousand children rehydrating at once do so in
parallel). Messages to a child wait behind its ``on_start``; an exception there is
a failure of that incarnation like any other. A factory that raises, though, fails
the start as in OTP: the supervisor's own start, ``start_child``'s caller, or the
restart (counted against the intensity and retried).

Two cautions. Stop a tree through its root (``SupervisorRef.stop``): pykka's
``ActorRegistry.stop_all()`` stops children before their supervisors, which see
normal exits and restart their permanent children. And a child must not ask its
own supervisor from ``on_stop``: the supervisor is waiting for it to stop, so it
is abandoned after its shutdown timeout.

Every child exit arrives as a ``ChildExited`` message from the child's link. The
supervisor then applies its child's restart type, counts the restart against its
intensity, and restarts the children its strategy names, after a backoff pause
if it has one. Children start in spec order (children added at run time after
them) and stop in the reverse order. All of it runs in the supervisor's thread.
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import pykka

from supervision._actor import SupervisedActor
from supervision._children import Child, RestartWindow, affected
from supervision._clock import Cancel, Clock, SystemClock
from supervision._errors import (
    ChildStartError,
    DuplicateChildError,
    RestartIntensityError,
    ShutdownTimeoutError,
    SupervisionError,
    UnknownChildError,
    UnknownMessageError,
    UnsupervisedActorError,
)
from supervision._info import ChildStatus, SupervisorInfo
from supervision._link import Link, offering
from supervision._messages import (
    ACCOUNTED,
    ChildExited,
    RestartDue,
    StartChild,
    StartFailed,
    TerminateChild,
)
from supervision._spec import ChildSpec, Restart, SupervisorFlags
from supervision._tree import Handle, Path, Tree

__all__ = ["EscalationHandler", "Supervisor"]

logger = logging.getLogger("chronik.supervision")

EscalationHandler = Callable[[BaseException], None]


class Supervisor(SupervisedActor):
    """Start with ``start_supervisor(...)`` (a root) or nest with
    ``Supervisor.child_spec(...)``. ``name``, ``clock`` and ``on_escalate`` apply
    to a root; nested supervisors share their root's clock unless given one.
    ``on_escalate(cause)`` is called, in the root's thread after all its children
    stopped, when the root itself fails."""

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        flags: SupervisorFlags | None = None,
        *,
        name: str = "root",
        clock: Clock | None = None,
        on_escalate: EscalationHandler | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        super().__init__()
        link = self._supervision_link
        if link is None:
            self._tree = Tree(name, clock or SystemClock())
            self._path: Path = ()
            self._tree.open(())
            self._tree.set((), self.actor_ref)
            self._tree.activity.begin()  # a child's start is counted by its link
        else:
            self._tree, self._path = link.tree, link.path
        self._incarnation = 0 if link is None else link.incarnation
        self._clock = clock or self._tree.clock
        self._name = self._tree.name_of(self._path)
        self._handle = Handle.register(self.actor_urn, self._tree, self._path)
        self._flags = flags or SupervisorFlags()
        self._on_escalate = on_escalate
        self._rng = rng
        self._children: list[Child] = []
        for spec in children:
            self._add(spec, dynamic=False)
        self._window = RestartWindow(self._flags.max_restarts, self._flags.period)
        self._tokens = itertools.count(1)
        self._timers: dict[int, Cancel] = {}
        self._failure: BaseException | None = None
        self._publish()

    @classmethod
    def child_spec(
        cls,
        id: str,  # as ChildSpec.id
        children: Sequence[ChildSpec] = (),
        flags: SupervisorFlags | None = None,
        *,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | None = None,
    ) -> ChildSpec:
        """A spec for a nested supervisor: it shuts down as long as its own
        children take (``shutdown=None``), as OTP advises for supervisors."""
        start = functools.partial(cls.start, tuple(children), flags)
        return ChildSpec(id, start, restart, shutdown)

    def tree(self) -> SupervisorInfo:
        """This supervisor's subtree, as last published by each supervisor in it."""
        info = self._tree.info(self._path)
        assert info is not None, "a supervisor publishes before it starts"
        return info

    # -- lifecycle ------------------------------------------------------------------

    def on_start(self) -> None:
        for child in self._children:
            error = self._start(child)
            if error is not None:
                # OTP: a supervisor whose children cannot all start fails to start.
                self._shutdown_children()
                raise error
        self._publish()

    def _on_started(self) -> None:
        super()._on_started()
        if self._supervision_link is None:
            self._tree.activity.end()

    def on_stop(self) -> None:
        self._shutdown_children()

    def _on_supervision_exit(self, reason: BaseException | None) -> None:
        self._shutdown_children()
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()
        self._failure = reason
        self._publish()
        if self._supervision_link is None:
            after = "" if reason is None else f" after {reason!r}"
            self._tree.stop(f"the supervision tree {self._tree.name!r} stopped{after}")
            return
        for child in self._children:
            if child.dynamic:  # a restarted supervisor starts without them (OTP)
                self._tree.close_under(child.path)

    def _on_unsupervised_exit(self, reason: BaseException | None) -> None:
        if reason is None:
            return
        if self._on_escalate is None:
            logger.critical("supervision tree %r failed: %r", self._tree.name, reason)
            return
        try:
            self._on_escalate(reason)
        except Exception:
            logger.exception(
                "on_escalate of supervision tree %r raised", self._tree.name
            )

    # -- messages -------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        handler = self._handlers.get(type(message))
        if handler is None:
            raise UnknownMessageError(str(self), type(message).__name__)
        return handler(self, message)

    def _on_child_exited(self, message: ChildExited) -> None:
        child = self._find(message.child_id)
        if (
            child is None
            or child.link is None
            or child.incarnation != message.incarnation
        ):
            return  # an incarnation this supervisor already stopped or replaced
        child.link = None
        self._handle_exit(child, message.reason)

    def _on_start_failed(self, message: StartFailed) -> None:
        child = self._find(message.child_id)
        if child is not None and child.token == message.token:
            child.token = None
            self._handle_exit(child, message.reason)

    def _on_restart_due(self, message: RestartDue) -> None:
        self._timers.pop(message.token, None)
        self._start_group([c for c in self._children if c.token == message.token])

    def _on_start_child(self, message: StartChild) -> None:
        child = self._add(message.spec, dynamic=True)
        error = self._start(child)
        if error is not None:
            self._remove(child)
            raise error

    def _on_terminate_child(self, message: TerminateChild) -> None:
        child = self._find(message.child_id)
        if child is None:
            known = tuple(c.id for c in self._children)
            raise UnknownChildError(self._name, message.child_id, known)
        self._terminate(child)
        self._remove(child)

    _handlers: dict[type, Callable[[Supervisor, Any], Any]] = {
        ChildExited: _on_child_exited,
        StartFailed: _on_start_failed,
        RestartDue: _on_restart_due,
        StartChild: _on_start_child,
        TerminateChild: _on_terminate_child,
    }

    def _after_envelope(self, message: Any) -> None:
        if isinstance(message, ACCOUNTED):
            self._tree.activity.end()
        self._publish()

    def _actor_loop_teardown(self) -> None:
        while not self.actor_inbox.empty():
            envelope = self.actor_inbox.get()
            if isinstance(envelope.message, ACCOUNTED):
                self._tree.activity.end()
            if envelope.reply_to is not None:
                dead = pykka.ActorDeadError(
                    f"{self} stopped before handling the message"
                )
                envelope.reply_to.set_exception((pykka.ActorDeadError, dead, None))

    # -- OTP's rules ------------------------------------------------------------------

    def _handle_exit(self, child: Child, reason: BaseException | None) -> None:
        child.status = ChildStatus.STOPPED
        child.supervisor_urn = None
        if reason is not None:
            child.last_failure = reason
        if child.spec.restart is Restart.TEMPORARY:
            self._remove(child)
            return
        if child.spec.restart is Restart.TRANSIENT and reason is None:
            return
        if not self._window.add(self._clock.monotonic()):
            self._give_up(child, reason)
        group = affected(self._flags.strategy, self._children, child)
        for other in reversed(group):
            if other is not child:
                self._terminate(other)
                if other.spec.restart is Restart.TEMPORARY:
                    self._remove(other)
        group = [c for c in group if c in self._children]  # less the temporary
        delay = self._backoff_delay(child)
        if delay > 0:
            self._schedule(group, delay)
        else:
            self._start_group(group)

    def _give_up(self, child: Child, reason: BaseException | None) -> NoReturn:
        self._shutdown_children()
        flags = self._flags
        raise RestartIntensityError(
            self._name, child.id, flags.max_restarts, flags.period, reason
        ) from reason

    def _backoff_delay(self, child: Child) -> float:
        backoff = self._flags.backoff
        if backoff is None:
            return 0.0
        if self._clock.monotonic() - child.started_at >= backoff.reset_after:
            child.attempt = 0
        delay = backoff.delay(child.attempt, self._rng())
        child.attempt += 1
        return delay

    def _schedule(self, group: list[Child], delay: float) -> None:
        token = next(self._tokens)
        for child in group:
            child.status, child.token = ChildStatus.RESTARTING, token
        activity, me = self._tree.activity, self.actor_ref

        def due() -> None:  # on the clock's thread: only send a message
            activity.begin()
            try:
                me.tell(RestartDue(token))
            except pykka.ActorDeadError:
                activity.end()

        self._timers[token] = self._clock.call_later(delay, due)

    def _start_group(self, group: list[Child]) -> None:
        for position, child in enumerate(group):
            error = self._start(child)
            if error is None:
                continue
            # As OTP's try_again_restart: the failed start is one more failure of
            # the child, handled as its own message; the rest of the group waits.
            token = next(self._tokens)
            child.status, child.token, child.last_failure = (
                ChildStatus.RESTARTING,
                token,
                error,
            )
            for rest in group[position + 1 :]:
                rest.status, rest.token = ChildStatus.RESTARTING, None
            self._tree.activity.begin()
            self.actor_ref.tell(StartFailed(child.id, token, error))
            return

    # -- children -----------------------------------------------------------------

    def _add(self, spec: ChildSpec, *, dynamic: bool) -> Child:
        if self._find(spec.id) is not None:
            raise DuplicateChildError(self._name, spec.id)
        child = Child(spec, (*self._path, spec.id), dynamic)
        self._children.append(child)
        self._tree.open(child.path)
        return child

    def _remove(self, child: Child) -> None:
        self._children.remove(child)
        self._tree.close_under(child.path)

    def _find(self, child_id: str) -> Child | None:
        return next((c for c in self._children if c.id == child_id), None)

    def _start(self, child: Child) -> SupervisionError | None:
        child.incarnation += 1
        link = Link(self._tree, child.path, self.actor_ref, child.incarnation)
        try:
            with offering(link):
                ref = child.spec.start()
        except BaseException as error:  # the factory is user code
            self._abort_start(link)
            return ChildStartError(self._name, child.id, error)
        if link.actor_ref is None or link.actor_ref is not ref:
            self._abort_start(link, ref)
            returned = getattr(ref, "actor_class", type(ref)).__name__
            return UnsupervisedActorError(self._name, child.id, returned)
        child.link, child.status, child.token = link, ChildStatus.RUNNING, None
        child.starts += 1
        child.started_at = self._clock.monotonic()
        is_supervisor = issubclass(ref.actor_class, Supervisor)
        child.supervisor_urn = ref.actor_urn if is_supervisor else None
        return None

    def _abort_start(self, link: Link, returned: object = None) -> None:
        """Stop what a failed factory started, so that nothing runs unsupervised
        (a factory starts a fresh actor: what it returns is the supervisor's)."""
        link.detach()
        for ref in (link.actor_ref, returned):
            if isinstance(ref, pykka.ActorRef):
                ref.stop(block=False)  # twice on the same actor is harmless
                self._tree.clear_if(link.path, ref)
        link.started()

    def _terminate(self, child: Child) -> None:
        """Stop ``child`` and wait up to its shutdown timeout; abandon it after."""
        child.token = None
        link, child.link = child.link, None
        child.status, child.supervisor_urn = ChildStatus.STOPPED, None
        if link is None or link.actor_ref is None:
            return
        link.detach()
        ref = link.actor_ref
        try:
            ref.stop(block=True, timeout=child.spec.shutdown)
        except pykka.Timeout:
            # A thread cannot be killed: forget the incarnation and move on.
            pykka.ActorRegistry.unregister(ref)
            self._tree.clear_if(child.path, ref)
            child.abandoned += 1
            timeout = child.spec.shutdown or 0.0
            child.last_failure = ShutdownTimeoutError(self._name, child.id, timeout)
            logger.error("%s", child.last_failure)
            return
        except Exception:  # it exited while stopping (SystemExit in on_stop, say)
            pass  # its link holds the reason
        if link.exit_reason is not None:
            child.last_failure = link.exit_reason

    def _shutdown_children(self) -> None:
        for child in reversed(self._children):
            self._terminate(child)

    def _publish(self) -> None:
        failure = None if self._failure is None else repr(self._failure)
        info = SupervisorInfo(
            name=self._name,
            strategy=self._flags.strategy,
            alive=not self.actor_stopped.is_set(),
            failure=failure,
            children=tuple(child.info() for child in self._children),
        )
        urns = tuple(child.supervisor_urn for child in self._children)
        self._tree.publish(self._path, self.actor_urn, self._incarnation, info, urns)
