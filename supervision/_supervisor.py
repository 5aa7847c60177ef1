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

A simple_one_for_one supervisor (OTP's) holds many alike children added at run
time, one per workflow run say: it starts with none, a child that will not
restart leaves it (and the tree) at once, and its shutdown stops every child in
parallel, in no particular order. Whatever the strategy, handling one message
costs what that message touches, not the number of children: the tree snapshot
is updated with the children that changed only.
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
from supervision._children import Child, Children, RestartWindow, affected
from supervision._clock import Cancel, Clock, SystemClock
from supervision._errors import (
    DuplicateChildError,
    RestartIntensityError,
    UnknownChildError,
    UnknownMessageError,
)
from supervision._incarnations import (
    Parent,
    abandon,
    adopt,
    start_incarnation,
    terminate,
    terminate_all,
)
from supervision._info import ChildStatus, SupervisorInfo
from supervision._messages import (
    ACCOUNTED,
    AbandonChild,
    AdoptChild,
    ChildExited,
    RestartDue,
    StartChild,
    StartFailed,
    TerminateChild,
)
from supervision._spec import (
    ChildSpec,
    Restart,
    Strategy,
    SupervisorFlags,
    check_children,
    restarts,
)
from supervision._tree import Handle, Path, Publication, Tree

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
        self._flags = flags or SupervisorFlags()
        check_children(children, self._flags)  # before anything is registered
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
        self._clock = clock or self._tree.clock
        self._name = self._tree.name_of(self._path)
        self._parent = Parent(self._name, self._tree, self.actor_ref, self._clock)
        self._handle = Handle.register(self.actor_urn, self._tree, self._path)
        self._generation = self._tree.next_generation()
        self._on_escalate = on_escalate
        self._rng = rng
        self._children = Children()
        for spec in children:
            self._add(spec, dynamic=False)
        self._window = RestartWindow(self._flags.max_restarts, self._flags.period)
        self._tokens = itertools.count(1)
        # Invariant: per backoff pause not over yet, its cancel and the children
        # waiting on it (those whose token is still its key when it is due).
        self._timers: dict[int, tuple[Cancel, list[Child]]] = {}
        self._failure: BaseException | None = None
        self._published = False  # the first publication lists every child
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
        check_children(children, flags or SupervisorFlags())
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
            error = start_incarnation(self._parent, child)
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
        self._forget_dynamic_children()  # before the parent learns we stopped

    def _on_supervision_exit(self, reason: BaseException | None) -> None:
        self._shutdown_children()
        for cancel, _ in self._timers.values():
            cancel()
        self._timers.clear()
        self._failure = reason
        self._publish()
        if self._supervision_link is None:
            after = "" if reason is None else f" after {reason!r}"
            self._tree.stop(f"the supervision tree {self._tree.name!r} stopped{after}")
            return
        self._forget_dynamic_children()

    def _forget_dynamic_children(self) -> None:
        """A restarted supervisor starts without the children added at run time
        (OTP): their paths close, once, before the next incarnation may reuse
        their ids. The root closes the whole tree instead."""
        if self._supervision_link is not None:
            for child in [c for c in self._children if c.dynamic]:
                self._remove(child)

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
        child = self._children.get(message.child_id)
        if (
            child is None
            or child.link is None
            or child.incarnation != message.incarnation
        ):
            return  # an incarnation this supervisor already stopped or replaced
        child.link = None
        self._handle_exit(child, message.reason)

    def _on_start_failed(self, message: StartFailed) -> None:
        child = self._children.get(message.child_id)
        if child is not None and child.token == message.token:
            child.token = None
            self._handle_exit(child, message.reason)

    def _on_restart_due(self, message: RestartDue) -> None:
        _, waiting = self._timers.pop(message.token, (None, []))
        due = [c for c in waiting if c.token == message.token]  # not stopped since
        self._start_group([c for c in due if self._children.holds(c)])

    def _on_start_child(self, message: StartChild) -> None:
        child = self._add(message.spec, dynamic=True)
        error = start_incarnation(self._parent, child)
        if error is not None:
            self._remove(child)
            raise error

    def _on_adopt_child(self, message: AdoptChild) -> None:
        link = message.link
        if link.supervisor is not self.actor_ref or message.spec.id in self._children:
            # Sent to an incarnation of this supervisor that is gone, or the id
            # is taken meanwhile: nobody supervises that start, so it stops.
            logger.error(
                "%s: cannot adopt child %r (%s)",
                self._name,
                message.spec.id,
                "taken"
                if message.spec.id in self._children
                else "sent to an earlier incarnation",
            )
            abandon(link)
            taken = self._children.get(message.spec.id)
            if taken is not None and taken.link and taken.link.actor_ref is not None:
                self._tree.set(taken.path, taken.link.actor_ref)  # claimed over it
            return
        child = self._add(message.spec, dynamic=True)
        adopt(self._parent, child, link)

    def _on_abandon_child(self, message: AbandonChild) -> None:
        child = self._children.get(message.child_id)
        if child is not None and child.incarnation == message.incarnation:
            child.link = None
            self._remove(child)

    def _on_terminate_child(self, message: TerminateChild) -> None:
        child = self._children.get(message.child_id)
        if child is None:
            known = self._children.ids()
            raise UnknownChildError(self._name, message.child_id, known)
        terminate(self._parent, child)
        self._remove(child)

    _handlers: dict[type, Callable[[Supervisor, Any], Any]] = {
        ChildExited: _on_child_exited,
        StartFailed: _on_start_failed,
        RestartDue: _on_restart_due,
        StartChild: _on_start_child,
        AdoptChild: _on_adopt_child,
        AbandonChild: _on_abandon_child,
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
        if not restarts(child.spec.restart, reason):
            if self._forgets(child):
                self._remove(child)
            return
        if not self._window.add(self._clock.monotonic()):
            self._give_up(child, reason)
        group = affected(self._flags.strategy, self._children, child)
        for other in reversed(group):
            if other is not child:
                terminate(self._parent, other)
                if self._forgets(other):
                    self._remove(other)
        group = [c for c in group if self._children.holds(c)]  # less the temporary
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

        self._timers[token] = (self._clock.call_later(delay, due), group)

    def _start_group(self, group: list[Child]) -> None:
        for position, child in enumerate(group):
            error = start_incarnation(self._parent, child)
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
        if spec.id in self._children:
            raise DuplicateChildError(self._name, spec.id)
        child = Child(spec, (*self._path, spec.id), dynamic)
        self._children.add(child)
        self._tree.open(child.path)
        return child

    def _remove(self, child: Child) -> None:
        self._children.remove(child)
        self._tree.close_under(child.path)

    def _forgets(self, child: Child) -> bool:
        """Whether ``child``, stopped for good, leaves rather than stays listed
        as stopped: under simple_one_for_one they would pile up, one per run."""
        simple = self._flags.strategy is Strategy.SIMPLE_ONE_FOR_ONE
        return simple or child.spec.restart is Restart.TEMPORARY

    def _shutdown_children(self) -> None:
        if self._flags.strategy is not Strategy.SIMPLE_ONE_FOR_ONE:
            for child in reversed(self._children):
                terminate(self._parent, child)
            return
        children = list(self._children)
        terminate_all(self._parent, children)
        for child in children:
            self._remove(child)

    def _publish(self) -> None:
        """Bring this supervisor's snapshot in the tree up to date, sending only
        the children changed since the last time."""
        gone, changed = self._children.take_changes()
        failure = None if self._failure is None else repr(self._failure)
        header = SupervisorInfo(
            name=self._name,
            strategy=self._flags.strategy,
            alive=not self.actor_stopped.is_set(),
            failure=failure,
            children=(),
        )
        publication = Publication(
            owner=self.actor_urn,
            generation=self._generation,
            header=header,
            complete=not self._published,
            gone=gone,
            changed=tuple((child.info(), child.supervisor_urn) for child in changed),
        )
        self._tree.publish(self._path, publication)
        self._published = True
