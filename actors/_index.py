"""The index of unfinished runs: a projection of the journal with a checkpoint.

A checkpoint event (in the stream ``INDEX_ID``) holds the unfinished run ids and
the notification id up to which they are complete. Opening reads the last
checkpoint and catches up from there on the notification log, reading only the
start and end events of runs, never every stream.

Invariant: ``ids`` holds every unfinished run and perhaps some finished ones (a
finished run found at resume is dropped); it never misses an unfinished run. A run
is added before its Started event is saved and removed after its end is saved.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Final

import attrs
from eventsourcing.application import Application
from eventsourcing.utils import register_topic

from aggregates import Cancelled, Completed, Failed, Started

__all__ = ["INDEX_ID", "UnfinishedRuns", "UnfinishedRunsCheckpointed"]

INDEX_ID: Final = "chronik:unfinished-runs"
_STARTED: Final = Started.TOPIC
_ENDED: Final = frozenset({Completed.TOPIC, Failed.TOPIC, Cancelled.TOPIC})
_PAGE: Final = 1000


@attrs.frozen(slots=False, kw_only=True)
class UnfinishedRunsCheckpointed:
    """The unfinished runs as of notification ``position`` (plain data only)."""

    originator_id: str
    originator_version: int
    timestamp: datetime
    runs: list[str]
    position: int

    TOPIC = "actors:UnfinishedRunsCheckpointed"


register_topic(UnfinishedRunsCheckpointed.TOPIC, UnfinishedRunsCheckpointed)


class UnfinishedRuns:
    def __init__(self, app: Application[Any]) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        self._version = 0

    def load(self) -> set[str]:
        """Read the last checkpoint and catch up on the log; the ids found."""
        position = 0
        stored = self._app.recorder.select_events(INDEX_ID, desc=True, limit=1)
        ids: set[str] = set()
        if stored:
            last = self._app.mapper.to_domain_event(stored[0])
            assert isinstance(last, UnfinishedRunsCheckpointed)
            ids, position, self._version = (
                set(last.runs),
                last.position,
                last.originator_version,
            )
        topics = [_STARTED, *_ENDED]
        while True:
            page = self._app.recorder.select_notifications(
                position, _PAGE, topics=topics, inclusive_of_start=False
            )
            for notification in page:
                run_id = str(notification.originator_id)
                if notification.topic == _STARTED:
                    ids.add(run_id)
                else:
                    ids.discard(run_id)
            if len(page) < _PAGE:
                break
            position = page[-1].id
        with self._lock:
            self._ids |= ids
            return set(self._ids)

    def add(self, workflow_id: str) -> None:
        with self._lock:
            self._ids.add(workflow_id)

    def discard(self, workflow_id: str) -> None:
        with self._lock:
            self._ids.discard(workflow_id)

    def checkpoint(self, at: datetime) -> None:
        # The position is read before the ids: anything committed up to it is
        # already reflected in the ids (see the invariant above).
        position = self._app.recorder.max_notification_id() or 0
        with self._lock:
            runs = sorted(self._ids)
            self._version += 1
            version = self._version
        event = UnfinishedRunsCheckpointed(
            originator_id=INDEX_ID,
            originator_version=version,
            timestamp=at,
            runs=runs,
            position=position,
        )
        self._app.recorder.insert_events([self._app.mapper.to_stored_event(event)])
