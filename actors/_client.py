"""``Client``: reach the runs of a journal from any process, driving none.

A web process, a cron job or a script opens a ``Client`` where it would
otherwise open an ``ActorSystem`` only to start or signal a run. A client holds
no lease and resumes nothing: it writes what it asks for into the journal
(a run's start, or a request in the operator inbox, durable when the call
returns) and wakes the one host that drives the run (``actors._wake``). It
reads the rest from the journal: status, result (waiting, wherever the run is
driven), lists of runs and their histories. A query replays the run read-only
in the client, as Temporal's workers answer queries: it needs the workflow's
code importable here, and answers with the state the journal holds now.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Self

from eventsourcing.persistence import IntegrityError

from actors._audit import Audit, RunSummary
from actors._backend import Backend, backend_for
from actors._definitions import WorkflowDefinition, resolve_workflow
from actors._errors import (
    ResultTimeoutError,
    RunConflictError,
    UnknownRunError,
)
from actors._inbox import OperatorRequests
from actors._instance import Start, WorkflowInstance
from actors._messages import Query
from actors._replayer import ReplayEnv
from actors._router import ending_of, read_run
from actors._system import RunsApp
from aggregates import RunEvent, RunFinishedError, RunStatus, WorkflowRun
from journal import ConverterLike, MsgpackTranscoder

__all__ = ["Client"]

_FIRST_LOOK = 0.005  # seconds before result() first reads the run again
_LAST_LOOK = 0.1  # and the longest pause between two reads


class Client:
    """Start, signal, cancel, query and watch the runs of the journal at
    ``path`` (which must hold one: a host opened it before). ``origin`` says
    who asks, from where: the operator inbox records it with each request
    (default: this process's id)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        converters: Iterable[ConverterLike] = (),
        origin: str | None = None,
    ):
        self._path = os.fspath(path)
        self._backend: Backend = backend_for(self._path)
        self._backend.check_exists()  # JournalPathError: no journal there
        self._transcoder = MsgpackTranscoder(converters)
        self._app = RunsApp(self._backend.env(), self._transcoder.converters)
        self._requests = OperatorRequests(self._app, wake=self._wake)
        self._origin = origin or f"client pid {os.getpid()}"

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        converters: Iterable[ConverterLike] = (),
        origin: str | None = None,
    ) -> Self:
        return cls(path, converters=converters, origin=origin)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._app.close()

    @property
    def path(self) -> str:
        return self._path

    # -- writing --------------------------------------------------------------------

    def start(
        self, workflow: WorkflowDefinition | str, *args: Any, id: str
    ) -> RunStatus:
        """Start ``workflow(*args)`` as run ``id`` (the host that drives its
        partition is woken to run it); its status. The id is an idempotency key,
        as for ``ActorSystem.spawn``: the same workflow and arguments give the
        existing run, anything else is a ``RunConflictError``, nothing written.
        ``workflow`` may be a name: the client need not import its code."""
        name = workflow.name if isinstance(workflow, WorkflowDefinition) else workflow
        if not isinstance(name, str) or not name:
            msg = f"start takes a @workflow function or its name, not {workflow!r}"
            raise TypeError(msg)
        if not isinstance(id, str) or not id:
            msg = f"a run id must be a non-empty str, not {id!r}"
            raise TypeError(msg)
        wanted = self.normalise(list(args))
        existing = self._get(id)
        if existing is None:
            run = WorkflowRun.start(id, name, wanted, at=_now())
            stored = [self._app.mapper.to_stored_event(e) for e in run.collect_events()]
            try:
                self._app.recorder.insert_events(stored)
            except IntegrityError:  # started meanwhile, by someone else
                existing = self._get(id)
                assert existing is not None
            else:
                self._wake(id)
                return RunStatus.RUNNING
        if (existing.name, list(existing.args)) != (name, wanted):
            raise RunConflictError(
                id,
                f"{existing.name}{tuple(existing.args)!r}",
                f"{name}{tuple(wanted)!r}",
            )
        return existing.status

    def signal(
        self,
        run_id: str,
        topic: str,
        payload: Any = None,
        *,
        signal_id: str | None = None,
    ) -> str:
        """Send run ``run_id`` a signal; its id, once the request is durable
        (the run's host records it once, by that id: sending again is a no-op).
        An unknown run is an ``UnknownRunError``, a finished one a
        ``RunFinishedError``; an unencodable payload raises. Nothing is
        written then."""
        if not isinstance(topic, str) or not topic:
            msg = f"signal topic {topic!r} must be a non-empty str"
            raise TypeError(msg)
        if signal_id is not None and (not isinstance(signal_id, str) or not signal_id):
            msg = f"signal_id {signal_id!r} must be a non-empty str, or None"
            raise TypeError(msg)
        payload = self.normalise(payload)
        run = self._run(run_id)
        signal_id = signal_id or str(uuid.uuid4())
        if signal_id in run.signal_ids:
            return signal_id  # delivered already: a retry
        if run.is_finished:
            raise RunFinishedError(run_id, run.status, "take signals")
        self._requests.signal(
            run_id,
            topic,
            payload,
            signal_id=signal_id,
            origin=self._origin,
            at=_now(),
        )
        return signal_id

    def send(
        self,
        run_id: str,
        topic: str,
        payload: Any = None,
        *,
        signal_id: str | None = None,
    ) -> str:
        """``signal``, by the name every ref and the system use: a client
        reaches durable runs (plain actors live in a host's memory)."""
        return self.signal(run_id, topic, payload, signal_id=signal_id)

    def cancel(self, run_id: str, reason: str = "cancelled") -> None:
        """Ask run ``run_id`` to cancel, durably; asking again is a no-op."""
        if not isinstance(reason, str):
            msg = f"cancel reason {reason!r} must be a str"
            raise TypeError(msg)
        run = self._run(run_id)
        if run.cancel_requested:
            return
        if run.is_finished:
            raise RunFinishedError(run_id, run.status, "be cancelled")
        self._requests.cancel(run_id, reason=reason, origin=self._origin, at=_now())

    # -- reading ----------------------------------------------------------------------

    def any_host_live(self) -> bool:
        """Whether some host has the journal open now (it delivers requests)."""
        return self._backend.any_host_live(self._app)

    def status(self, run_id: str) -> RunStatus:
        return self._run(run_id).status

    def result(self, run_id: str, timeout: float | None = None) -> Any:
        """The run's result, waiting up to ``timeout`` seconds, wherever it is
        driven. A failed run raises ``WorkflowFailedError``, a cancelled one
        ``RunCancelledError``, as ``RunRef.result`` does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _FIRST_LOOK
        while True:
            run = self._run(run_id)
            if run.is_finished:
                _, result, error = ending_of(run)
                if error is not None:
                    raise error
                return result
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeoutError(run_id, timeout)
            left = None if deadline is None else deadline - time.monotonic()
            time.sleep(pause if left is None else max(0.0, min(pause, left)))
            pause = min(pause * 2, _LAST_LOOK)

    def query(self, run_id: str, name: str, *args: Any) -> Any:
        """Call the run's query handler ``name``: the run is replayed here,
        read-only, from the journal (its workflow's code must be importable)."""
        run = self._run(run_id)
        instance = WorkflowInstance(
            resolve_workflow(run.name),
            run,
            ReplayEnv(run.modified_on, self._transcoder),
            read_only=True,
        )
        try:
            instance.activate(Start())
            reply = instance.activate(Query(name, tuple(args))).reply
        finally:
            instance.close()
        assert reply is not None
        if reply.error is not None:
            raise reply.error
        return reply.value

    def history(self, run_id: str) -> WorkflowRun:
        """Run ``run_id`` as the journal holds it now (a copy to read)."""
        return self._run(run_id)

    def events(
        self,
        run_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[RunEvent]:
        """The run's events, oldest first: those at or after ``since`` and
        before ``until``, the first ``limit`` of them."""
        _check_limit(limit)
        self._run(run_id)  # UnknownRunError
        with Audit(self._path, converters=self._transcoder.converters) as audit:
            events = [
                e for e in audit.history(run_id) if _within(e.timestamp, since, until)
            ]
        return events[:limit]

    def list(
        self,
        *,
        status: RunStatus | str | None = None,
        workflow: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]:
        """The runs, in the order they started: of ``status``, of ``workflow``
        (its name), started at or after ``since`` and before ``until``; the
        first ``limit`` of them."""
        _check_limit(limit)
        with Audit(self._path, converters=self._transcoder.converters) as audit:
            runs = audit.runs(status)
        chosen = [
            r
            for r in runs
            if (workflow is None or r.workflow == workflow)
            and _within(r.started_at, since, until)
        ]
        return chosen[:limit]

    def normalise(self, value: Any) -> Any:
        """``value`` as history will hold it; unencodable values raise here."""
        return self._transcoder.decode(self._transcoder.encode(value))

    # -- inside -----------------------------------------------------------------------

    def _get(self, run_id: str) -> WorkflowRun | None:
        return read_run(self._app, run_id)

    def _run(self, run_id: str) -> WorkflowRun:
        run = self._get(run_id)
        if run is None:
            raise UnknownRunError(run_id)
        return run

    def _wake(self, run_id: str) -> None:
        self._backend.wake_run_owner(self._app, run_id)


def _now() -> datetime:
    return datetime.now(UTC)


def _within(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        msg = f"limit={limit!r} must be an int >= 0, or None"
        raise ValueError(msg)
