"""``SupervisedActor``: a pykka ``ThreadingActor`` whose every exit reaches its
supervisor, with the exception that caused it.

pykka itself has no links or monitors: a failure is logged and the actor stops;
a ``BaseException`` that is not an ``Exception`` (``SystemExit``,
``KeyboardInterrupt``) raised in a handler makes pykka stop *every* actor in the
process, and one raised in ``on_start`` kills the thread without unregistering the
actor. This class replaces pykka's loop so that:

- an exception in ``on_start``, in ``on_receive`` for a told message, in
  ``on_failure`` or in ``on_stop`` ends this incarnation, and its supervisor gets
  the exception (``ChildExited``); pykka still logs it;
- ``SystemExit``/``KeyboardInterrupt`` end this actor only, reported the same way;
  an asker gets ``ActorCrashedError``, never the exit itself;
- an exception while handling an *ask* goes back to the asker and the actor lives
  on, as in pykka (the asker owns that error);
- a normal stop (``self.stop()`` or someone's ``ref.stop()``) is reported as a
  normal exit, which a permanent child restarts from.

Plain pykka actors: ``supervised(PlainActor)`` (what ``ChildSpec.for_actor`` does)
returns a subclass with this behaviour; a factory that returns a plain actor is a
start error (``UnsupervisedActorError``).
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import Any, TypeVar

import pykka
from pykka._envelope import Envelope
from pykka._types import OptExcInfo

from supervision._errors import ActorCrashedError
from supervision._link import Link, claim_offered

__all__ = ["SupervisedActor", "supervised"]

logger = logging.getLogger("chronik.supervision")

A = TypeVar("A", bound=pykka.ThreadingActor)


class SupervisedActor(pykka.ThreadingActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # None when started outside a supervisor: failures are then only pykka's
        # log, but an exit still ends this actor alone.
        self._supervision_link: Link | None = claim_offered(self.actor_ref)
        self._supervision_reason: BaseException | None = None
        self._supervision_exiting = False

    # -- pykka's loop, with every exit accounted for ----------------------------------

    def _actor_loop(self) -> None:
        try:
            self._actor_loop_setup()
            self._actor_loop_running()
            self._actor_loop_teardown()
        except BaseException:  # a failure outside any handler
            self._handle_failure(*sys.exc_info())
            self._actor_loop_teardown()
        finally:
            self._supervision_finish()

    def _actor_loop_setup(self) -> None:
        try:
            self.on_start()
        except BaseException:  # SystemExit too ends this actor only
            self._handle_failure(*sys.exc_info())
        finally:
            self._on_started()

    def _actor_loop_running(self) -> None:
        while not self.actor_stopped.is_set():
            envelope = self.actor_inbox.get()
            try:
                self._supervision_handle(envelope)
            finally:
                self._after_envelope(envelope.message)

    def _supervision_handle(self, envelope: Envelope[Any]) -> None:
        try:
            response = self._handle_receive(envelope.message)
        except Exception:
            if envelope.reply_to is not None:
                envelope.reply_to.set_exception()
                return
            self._fail(sys.exc_info())
        except BaseException:
            exc_info = sys.exc_info()
            if envelope.reply_to is not None:
                crashed = ActorCrashedError(str(self), repr(exc_info[1]))
                envelope.reply_to.set_exception((ActorCrashedError, crashed, None))
            self._fail(exc_info)
        else:
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)

    def _fail(self, exc_info: OptExcInfo) -> None:
        self._handle_failure(*exc_info)
        try:
            self.on_failure(*exc_info)
        except Exception:  # recorded, not the first failure
            self._handle_failure(*sys.exc_info())

    def _on_started(self) -> None:
        """Hook: ``on_start`` returned or failed."""
        if self._supervision_link is not None:
            self._supervision_link.started()

    def _after_envelope(self, message: Any) -> None:
        """Hook: called after each message, handled or failed."""

    def _stop(self) -> None:
        self._supervision_begin_exit()
        super()._stop()

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._supervision_begin_exit()
        if exception_value is not None:
            if self._supervision_reason is None:
                self._supervision_reason = exception_value
            if self._supervision_link is not None:
                self._supervision_link.record(exception_value)
        super()._handle_failure(exception_type, exception_value, traceback)

    # -- reporting ----------------------------------------------------------------

    def _supervision_begin_exit(self) -> None:
        if self._supervision_exiting:
            return
        self._supervision_exiting = True
        if self._supervision_link is not None:
            self._supervision_link.begin_exit()

    def _supervision_finish(self) -> None:
        """The incarnation's thread is done: tell whoever needs to know, once."""
        self._supervision_begin_exit()
        try:
            self._on_supervision_exit(self._supervision_reason)
        except BaseException as error:  # still report the exit
            logger.exception("%s failed while exiting", self)
            self._handle_failure(type(error), error, error.__traceback__)
        if self._supervision_link is not None:
            self._supervision_link.report(self.actor_ref)
        else:
            self._on_unsupervised_exit(self._supervision_reason)

    def _on_supervision_exit(self, reason: BaseException | None) -> None:
        """Hook: last code in the actor's thread, before its exit is reported."""

    def _on_unsupervised_exit(self, reason: BaseException | None) -> None:
        """Hook: the actor had no supervisor to report ``reason`` to."""


_supervised_classes: dict[type[pykka.ThreadingActor], type[SupervisedActor]] = {}


def supervised(actor_class: type[A]) -> type[A]:
    """``actor_class`` itself if it is a ``SupervisedActor``, else a subclass of it
    that reports its failures (made once per class)."""
    if issubclass(actor_class, SupervisedActor):
        return actor_class
    if not issubclass(actor_class, pykka.ThreadingActor):
        msg = f"supervised() takes a pykka.ThreadingActor subclass, not {actor_class!r}"
        raise TypeError(msg)
    made = _supervised_classes.get(actor_class)
    if made is None:
        made = type(
            actor_class.__name__,
            (SupervisedActor, actor_class),
            {
                "__module__": actor_class.__module__,
                "__qualname__": actor_class.__qualname__,
            },
        )
        _supervised_classes[actor_class] = made
    return made  # type: ignore[return-value]
