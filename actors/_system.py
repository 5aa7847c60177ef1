"""``ActorSystem``: the journal, the runs' actors, the step pool and the timers."""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Self

import pykka
from eventsourcing.application import AggregateNotFoundError, Application

from actors._actor import WorkerFailed, WorkflowActor
from actors._clock import Clock, SystemClock
from actors._definitions import (
    ActivityDefinition,
    WorkflowDefinition,
    resolve_workflow,
)
from actors._errors import (
    RunConflictError,
    SystemClosedError,
    UnknownRunError,
    UnknownWorkflowError,
    WorkflowFailedError,
)
from actors._index import UnfinishedRuns
from actors._messages import TimerDue
from actors._ref import RunHandle, RunRef
from actors._steps import run_step
from actors._timers import TimerService
from aggregates import RunStatus, WorkflowRun
from journal import MsgpackTranscoder

__all__ = ["ActorSystem"]


class _Runs(Application[str]):
    """The journal's view of workflow runs: one WorkflowRun aggregate per run."""


class ActorSystem:
    """Open with ``ActorSystem.open(path)``; every unfinished run resumes by replay."""

    def __init__(self, path: str, clock: Clock, max_workers: int) -> None:
        self._path = path
        self._clock = clock
        self._app = _Runs(env={"PERSISTENCE_MODULE": "journal", "LMDB_PATH": path})
        self._transcoder = MsgpackTranscoder()
        self._index = UnfinishedRuns(self._app)
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="chronik-step")
        self._timers = TimerService(clock.now, self._fire_timer)
        self._closing = threading.Event()
        self._closed = False
        self._spawn_lock = threading.Lock()
        # Invariant: every run with a live actor is here; lookups are O(1).
        self._handles: dict[str, RunHandle] = {}
        self._stop_timers = clock.drive(self._timers)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        max_workers: int = 16,
    ) -> Self:
        """Open the journal at ``path`` and resume every unfinished run."""
        system = cls(os.fspath(path), clock or SystemClock(), max_workers)
        try:
            system._resume_unfinished()
        except BaseException:
            system.close()
            raise
        return system

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> str:
        return self._path

    # -- runs -----------------------------------------------------------------------

    def spawn(self, workflow: WorkflowDefinition | str, *args: Any, id: str) -> RunRef:
        """Start ``workflow(ctx, *args)`` as run ``id``, or return run ``id``.

        The id is an idempotency key: the same workflow and arguments give the
        existing run; anything else is a ``RunConflictError``. Arguments msgpack
        cannot encode raise ``UnencodableValueError`` and nothing is written.
        """
        self._check_open()
        definition = (
            resolve_workflow(workflow) if isinstance(workflow, str) else workflow
        )
        if not isinstance(definition, WorkflowDefinition):
            msg = f"spawn takes a @workflow function or its name, not {workflow!r}"
            raise TypeError(msg)
        args_list = self._normalised(list(args))
        with self._spawn_lock:
            handle = self._handles.get(id) if isinstance(id, str) else None
            if handle is None:
                handle = self._load(id) if isinstance(id, str) and id else None
            if handle is not None:
                self._check_same(handle, definition.name, args_list)
                return self._ref(handle)
            run = WorkflowRun.start(
                id, definition.name, args_list, at=self._clock.now()
            )
            self._index.add(id)
            try:
                self._app.save(run)
            except BaseException:
                self._index.discard(id)
                raise
            handle = RunHandle(id, definition.name, args_list)
            self._handles[id] = handle
            WorkflowActor.start(self, definition, run, handle)
        return self._ref(handle)

    def ref(self, workflow_id: str) -> RunRef:
        """The run ``workflow_id``, from any thread; ``UnknownRunError`` if none."""
        self._check_open()
        handle = self._handles.get(workflow_id)
        if handle is None:
            with self._spawn_lock:
                handle = self._handles.get(workflow_id) or self._load(workflow_id)
        if handle is None:
            raise UnknownRunError(workflow_id)
        return self._ref(handle)

    def _normalised(self, value: Any) -> Any:
        """``value`` as history will hold it; unencodable values raise here."""
        return self._transcoder.decode(self._transcoder.encode(value))

    def _ref(self, handle: RunHandle) -> RunRef:
        return RunRef(handle, self.check_encodable)

    def _load(self, workflow_id: str) -> RunHandle | None:
        """A handle on a run that has no live actor (a finished run), cached."""
        try:
            run: WorkflowRun = self._app.repository.get(workflow_id)
        except AggregateNotFoundError:
            return None
        handle = RunHandle(workflow_id, run.name, list(run.args))
        if run.status is RunStatus.COMPLETED:
            handle.finish(run.status, result=run.result)
        elif run.is_finished:
            assert run.error is not None
            handle.finish(run.status, error=WorkflowFailedError(workflow_id, run.error))
        self._handles[workflow_id] = handle
        return handle

    @staticmethod
    def _check_same(handle: RunHandle, name: str, args: list[Any]) -> None:
        if (handle.name, handle.args) != (name, args):
            raise RunConflictError(
                handle.workflow_id,
                f"{handle.name}{tuple(handle.args)!r}",
                f"{name}{tuple(args)!r}",
            )

    def _resume_unfinished(self) -> None:
        for workflow_id in sorted(self._index.load()):
            try:
                run: WorkflowRun = self._app.repository.get(workflow_id)
            except AggregateNotFoundError:
                self._index.discard(workflow_id)
                continue
            if run.is_finished:
                self._index.discard(workflow_id)
                continue
            handle = RunHandle(workflow_id, run.name, list(run.args))
            self._handles[workflow_id] = handle
            try:
                definition = resolve_workflow(run.name)
            except UnknownWorkflowError as error:
                handle.break_off(error)  # ref.result() says why it cannot resume
                continue
            WorkflowActor.start(self, definition, run, handle)
        self._index.checkpoint(self._clock.now())

    # -- services for the runs' actors ------------------------------------------

    def now(self) -> datetime:
        return self._clock.now()

    def save(self, run: WorkflowRun) -> None:
        self._app.save(run)

    def check_encodable(self, value: Any) -> None:
        self._transcoder.encode(value)

    def add_timer(self, workflow_id: str, seq: int, fire_at: datetime) -> None:
        self._timers.add(workflow_id, seq, fire_at)

    def run_finished(self, workflow_id: str) -> None:
        self._index.discard(workflow_id)

    def submit_step(
        self,
        step: ActivityDefinition,
        args: tuple[Any, ...],
        workflow_id: str,
        seq: int,
        reply_to: pykka.ActorRef[Any],
    ) -> None:
        if self._closing.is_set():
            return  # not recorded: it runs when the journal is reopened

        def attempt() -> None:
            try:
                outcome = run_step(
                    step,
                    args,
                    workflow_id,
                    seq,
                    clock=self._clock,
                    check_encodable=self.check_encodable,
                    stopping=self._closing,
                )
            except Exception as error:
                _tell(reply_to, WorkerFailed(seq, error))
                return
            if outcome is not None:
                _tell(reply_to, outcome)

        try:
            self._pool.submit(attempt)
        except RuntimeError:
            if not self._closing.is_set():
                raise

    def _fire_timer(self, workflow_id: str, seq: int) -> None:
        handle = self._handles.get(workflow_id)
        if handle is not None and handle.actor is not None:
            _tell(handle.actor, TimerDue(seq))

    # -- closing --------------------------------------------------------------------

    def close(self) -> None:
        """Stop every run; a step still running is recorded or runs again later."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._stop_timers()
        # Running attempts finish and their actors record them; queued ones are
        # dropped and run again when the journal is reopened.
        self._pool.shutdown(wait=True, cancel_futures=True)
        actors = [h.actor for h in list(self._handles.values()) if h.actor is not None]
        for future in [actor.stop(block=False) for actor in actors]:
            future.get()
        try:
            self._index.checkpoint(self._clock.now())
        finally:
            self._app.close()

    def _check_open(self) -> None:
        if self._closed:
            raise SystemClosedError(self._path)


def _tell(actor: pykka.ActorRef[Any], message: Any) -> None:
    # A stopped actor's run resumes by replay on the next open; the message
    # (a step outcome, a timer fire) is then redone from history.
    with contextlib.suppress(pykka.ActorDeadError):
        actor.tell(message)
