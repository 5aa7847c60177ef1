"""The index of unfinished runs: a projection of the journal with a checkpoint.

A checkpoint event (in the stream ``INDEX_ID``) holds the unfinished run ids and
the notification id up to which they are complete. Opening reads the last
checkpoint and catches up from there on the notification log, reading only the
start and end events of runs, never every stream.

Invariant: a checkpoint's ``runs`` are exactly the runs whose Started and no end
event are at or before its ``position`` in the log.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Final

import attrs
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError
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
    """Read and write checkpoints; any number of systems may share a journal."""

    def __init__(self, app: Application[Any]) -> None:
        self._app = app
        self._lock = threading.Lock()
        # The last catch-up's (ids, position): the next one reads the log from
        # there when no checkpoint is further along (a copy, under _known_lock).
        self._known: tuple[frozenset[str], int] | None = None
        self._known_lock = threading.Lock()

    def load(self) -> set[str]:
        """The unfinished runs: the last checkpoint caught up on the log."""
        ids, _, _ = self._catch_up()
        return ids

    def checkpoint(self, at: datetime) -> None:
        """Store the caught-up ids, so the next open reads less of the log.

        The checkpoint is derived from the log alone, never from what this
        process believes, so a checkpoint written by another system (a process
        sharing the journal, or one abandoned) is never contradicted; a race
        for the same version is retried from the winner's checkpoint.
        """
        with self._lock:
            for _ in range(8):
                ids, position, version = self._catch_up()
                event = UnfinishedRunsCheckpointed(
                    originator_id=INDEX_ID,
                    originator_version=version + 1,
                    timestamp=at,
                    runs=sorted(ids),
                    position=position,
                )
                stored = self._app.mapper.to_stored_event(event)
                try:
                    self._app.recorder.insert_events([stored])
                except IntegrityError:
                    continue  # another system checkpointed first
                return

    def _catch_up(self) -> tuple[set[str], int, int]:
        """(ids, position, version of the last checkpoint) as of the log's end."""
        position, version = 0, 0
        ids: set[str] = set()
        stored = self._app.recorder.select_events(INDEX_ID, desc=True, limit=1)
        if stored:
            last = self._app.mapper.to_domain_event(stored[0])
            assert isinstance(last, UnfinishedRunsCheckpointed)
            ids, position = set(last.runs), last.position
            version = last.originator_version
        with self._known_lock:
            known = self._known
        if known is not None and known[1] > position:
            ids, position = set(known[0]), known[1]
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
            if page:
                position = page[-1].id
            if len(page) < _PAGE:
                break
        with self._known_lock:
            if self._known is None or position >= self._known[1]:
                self._known = (frozenset(ids), position)
        return ids, position, version
