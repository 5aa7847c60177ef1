"""``Audit``: a journal's runs, their histories and past states, its log, a check.

``Audit(path_or_system)`` reads through a read-only ``JournalReader``: it never
takes the write lock, so it works while this process or another one runs the
system on the same journal, and sees each commit as a whole.

- ``runs(status=)``: one ``RunSummary`` per run, in start order;
- ``history(id)``: the run's events, typed (``Started``, ``StepScheduled``, ...);
- ``state(id, at=N)``: the ``WorkflowRun`` as it was at version N (time travel);
- ``log(start)``: the global log as ``LogEntry`` values; ``follow()`` the same,
  live; ``export(start)``: the log as JSON documents, values tagged as history
  files tag them;
- ``verify(id=None)``: the journal's hash chains and a determinism replay of the
  runs against the current code, in one ``AuditReport``.

The log holds streams other than runs (the index of unfinished runs, whatever
a later chronik adds): ``log`` gives their events as it decodes them, or
``event=None`` for a topic this code does not know; ``runs`` skips them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Self

import attrs
from eventsourcing.persistence import Mapper, Notification, Transcoding
from eventsourcing.utils import TopicError

from actors._errors import ActorError
from actors._history_file import (
    JournalSource,
    _to_json,
    converters_of,
    export_history,
)
from actors._replayer import Replayer, ReplayReport, ReplayResult, _rebuild
from actors._system import ActorSystem
from aggregates import (
    Cancelled,
    Completed,
    Failed,
    RunEvent,
    RunStatus,
    Started,
    WorkflowRun,
)
from journal import ConverterLike, MsgpackTranscoder, VerifyReport, open_reader

__all__ = [
    "Audit",
    "AuditReport",
    "Follow",
    "LogEntry",
    "Progress",
    "RunSummary",
    "VerifyStage",
    "VersionOutOfRangeError",
]

_ENDS: Final = {
    Completed.TOPIC: RunStatus.COMPLETED,
    Failed.TOPIC: RunStatus.FAILED,
    Cancelled.TOPIC: RunStatus.CANCELLED,
}


class VerifyStage(StrEnum):
    CHAIN = "chain"  # the journal's hash chains, counted in events
    REPLAY = "replay"  # the determinism replay, counted in runs


# progress(stage, done, total): ``total`` is None when it is not known.
Progress = Callable[[VerifyStage, int, int | None], None]


class VersionOutOfRangeError(ActorError, IndexError):
    """A version a run's history does not have."""

    workflow_id: str
    version: int
    last: int
    template = (
        "run {workflow_id!r} has no version {version}; pick a version from 1 to {last}"
    )


@attrs.frozen
class RunSummary:
    """One run at a glance; ``version`` counts its events, ``ended_at`` is the
    time of its end event (``None`` while it runs)."""

    workflow_id: str
    workflow: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None
    version: int
    parent_id: str | None

    @classmethod
    def of(cls, run: WorkflowRun) -> RunSummary:
        ended = run.modified_on if run.is_finished else None
        return cls(
            run.id,
            run.name,
            run.status,
            run.started_at,
            ended,
            run.version,
            run.parent_id,
        )


@attrs.frozen
class LogEntry:
    """One notification of the global log: the event at ``position``, which is
    ``version`` of stream ``stream_id``. ``event`` is ``None`` when this code
    does not know the event's ``topic``."""

    position: int
    stream_id: str
    version: int
    topic: str
    event: object | None

    @property
    def run_event(self) -> RunEvent | None:
        """The event, if it is an event of a workflow run."""
        return self.event if isinstance(self.event, RunEvent) else None


@attrs.frozen
class AuditReport:
    """What ``Audit.verify`` found: the journal's own check (``chain``) and the
    replay of the runs against the current code (``replay``)."""

    chain: VerifyReport
    replay: ReplayReport

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.replay.ok

    @property
    def first_bad(self) -> int | None:
        """The first log position the chain check found bad."""
        return self.chain.first_bad

    @property
    def problems(self) -> tuple[str, ...]:
        """One line per problem: the chain's (by position), then each run that
        did not replay."""
        chain = (f"journal: {_one_line(str(p))}" for p in self.chain.problems)
        runs = (f"replay: {_one_line(str(result))}" for result in self.replay.failures)
        return (*chain, *runs)

    def summary(self) -> str:
        chain = self.chain
        checked = f"{chain.events} events, {chain.notifications} notifications"
        head = f", head {chain.head}" if chain.head else ""
        verdict = "ok" if chain.ok else f"{len(chain.problems)} problem(s)"
        first = f", first bad position {self.first_bad}" if self.first_bad else ""
        lines = [f"journal: {checked}{head}: {verdict}{first}"]
        lines.append(self.replay.summary().splitlines()[0])
        return "\n".join([*lines, *(f"- {p}" for p in self.problems)])


class Follow:
    """The log from a position on, then each event as it is committed; iterate
    it, and ``stop()`` it (or leave its ``with`` block) to end the iteration."""

    def __init__(self, subscription: Any, decode: Callable[[Notification], LogEntry]):
        self._subscription = subscription
        self._decode = decode
        self._stopped = False
        subscription.__enter__()  # so that stopping also joins its thread

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> LogEntry:
        return self._decode(next(self._subscription))

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._subscription.__exit__(None, None, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Audit:
    """Reads one journal for audit (a path, or the journal of an open system).

    ``converters``: the user types its events hold, as ``ActorSystem.open``
    takes them (an open system's own are added)."""

    def __init__(
        self, source: JournalSource, *, converters: Iterable[ConverterLike] = ()
    ) -> None:
        path = source.path if isinstance(source, ActorSystem) else os.fspath(source)
        transcoder = MsgpackTranscoder(converters_of(source, converters))
        self._converters = transcoder.converters
        self._types = {converter.type: converter for converter in self._converters}
        self._reader = open_reader(path)
        self._mapper = Mapper[str](transcoder=transcoder)
        self._follows: list[Follow] = []

    @property
    def path(self) -> str:
        return self._reader.path

    @property
    def converters(self) -> tuple[Transcoding, ...]:
        """The converters of the user types it reads."""
        return self._converters

    def last_position(self) -> int:
        """The position of the last event in the log (0 if it is empty)."""
        return self._reader.max_notification_id() or 0

    # -- runs ----------------------------------------------------------------

    def runs(self, status: RunStatus | str | None = None) -> list[RunSummary]:
        """Every run (or those of ``status``), in the order they started."""
        wanted = None if status is None else RunStatus(status)
        started: dict[str, Started] = {}
        versions: dict[str, int] = {}
        ends: dict[str, tuple[RunStatus, datetime]] = {}
        for notification in self._reader.notifications():
            run_id = str(notification.originator_id)
            if notification.topic == Started.TOPIC:
                first = self._run_event(notification)
                assert isinstance(first, Started)
                started[run_id] = first
            elif run_id not in started:
                continue  # not a run's stream
            versions[run_id] = notification.originator_version
            end = _ENDS.get(notification.topic)
            if end is not None:
                at = self._run_event(notification).timestamp
                ends[run_id] = (end, at)
        summaries = (
            _summary(first, versions[run_id], ends.get(run_id))
            for run_id, first in started.items()
        )
        return [s for s in summaries if wanted is None or s.status is wanted]

    def run(self, workflow_id: str) -> RunSummary:
        """One run at a glance; ``UnknownRunError`` if the journal has no such run."""
        return RunSummary.of(self.state(workflow_id))

    def history(self, workflow_id: str) -> tuple[RunEvent, ...]:
        """The run's events, oldest first (its version N is ``history[N - 1]``)."""
        return export_history(
            self.path, workflow_id, converters=self._converters
        ).events

    def state(self, workflow_id: str, at: int | None = None) -> WorkflowRun:
        """The run as it was at version ``at`` (default: now), rebuilt from its
        events; ``VersionOutOfRangeError`` names the versions it has."""
        events = self.history(workflow_id)
        if at is not None and not 1 <= at <= len(events):
            raise VersionOutOfRangeError(workflow_id, at, len(events))
        run = _rebuild(events[:at])
        assert isinstance(run, WorkflowRun)
        return run

    # -- the log ---------------------------------------------------------------

    def log(
        self, start: int = 1, stop: int | None = None, topics: Sequence[str] = ()
    ) -> Iterator[LogEntry]:
        """The log from position ``start`` to ``stop`` (inclusive; default its
        end), read in pages: memory stays constant however long it is."""
        for notification in self._reader.notifications(max(start, 1), topics):
            if stop is not None and notification.id > stop:
                return
            yield self._entry(notification)

    def follow(self, start: int | None = None, topics: Sequence[str] = ()) -> Follow:
        """The log from ``start`` (default: the next event committed) on, live."""
        first = self.last_position() + 1 if start is None else start
        follow = Follow(self._reader.follow(first, topics), self._entry)
        self._follows = [f for f in self._follows if not f.stopped] + [follow]
        return follow

    def export(
        self, start: int = 1, stop: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The log as JSON data, one document per event: ``position``, ``stream``,
        ``version``, ``topic``, ``timestamp`` and ``state`` (tagged as in history
        files). Ends at ``stop``, default the log's end when the export began."""
        last = self.last_position() if stop is None else stop
        transcoder = self._mapper.transcoder
        for notification in self._reader.notifications(max(start, 1)):
            if notification.id > last:
                return
            state = dict(transcoder.decode(notification.state))
            timestamp = state.pop("timestamp", None)
            where = f"position {notification.id}"
            yield {
                "position": notification.id,
                "stream": str(notification.originator_id),
                "version": notification.originator_version,
                "topic": notification.topic,
                "timestamp": _to_json(timestamp, f"{where} timestamp"),
                "state": _to_json(state, f"{where} state", self._types),
            }

    # -- verification ------------------------------------------------------------

    def verify(
        self,
        workflow_id: str | None = None,
        *,
        progress: Progress | None = None,
        replayer: Replayer | None = None,
    ) -> AuditReport:
        """Check the journal (or one run's stream) with its hash chains, then
        replay every run (or the one) against the current code: ``replayer``,
        default one that resolves workflows by name."""
        report = progress or _no_progress
        if workflow_id is None:
            ids = [summary.workflow_id for summary in self.runs()]
            events: int | None = self.last_position()
        else:
            events = len(self.history(workflow_id))  # UnknownRunError first
            ids = [workflow_id]
        chain = self._reader.verify(
            workflow_id, progress=lambda done: report(VerifyStage.CHAIN, done, events)
        )
        replayer = replayer or Replayer(converters=self._converters)
        results: list[ReplayResult] = []
        report(VerifyStage.REPLAY, 0, len(ids))
        for done, run_id in enumerate(ids, start=1):
            results.extend(replayer.replay_journal(self.path, [run_id]).results)
            report(VerifyStage.REPLAY, done, len(ids))
        return AuditReport(chain, ReplayReport(tuple(results)))

    # -- decoding ---------------------------------------------------------------

    def _entry(self, notification: Notification) -> LogEntry:
        try:
            event: object | None = self._mapper.to_domain_event(notification)
        except TopicError:  # a stream a later chronik (or another app) writes
            event = None
        return LogEntry(
            notification.id,
            str(notification.originator_id),
            notification.originator_version,
            notification.topic,
            event,
        )

    def _run_event(self, notification: Notification) -> RunEvent:
        event = self._mapper.to_domain_event(notification)
        if not isinstance(event, RunEvent):
            msg = f"position {notification.id} holds a {type(event).__name__}"
            raise TypeError(f"{msg}, not an event of a workflow run")
        return event

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        for follow in self._follows:
            follow.stop()
        self._reader.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _summary(
    started: Started, version: int, end: tuple[RunStatus, datetime] | None
) -> RunSummary:
    status, ended_at = end if end is not None else (RunStatus.RUNNING, None)
    return RunSummary(
        started.originator_id,
        started.name,
        status,
        started.timestamp,
        ended_at,
        version,
        started.parent_id,
    )


def _no_progress(stage: VerifyStage, done: int, total: int | None) -> None:
    pass


def _one_line(text: str) -> str:
    return " ".join(text.split())
