"""Publishing a system's counters into its journal, for ``chronik stats``.

A daemon thread looks every ``period`` seconds and writes the system's stats
document (``journal.publish_stats``) only if its counters changed since the
last write; closing writes it once more, marked closed. Publishing is a
bystander: a failure is logged and the system carries on.

Where the document goes: an LMDB ``Journal`` (its ``chronik:stats`` database),
or a ``journal._stats.StatsStore`` (a PostgreSQL journal's ``chronik_stats``
table, ``Backend.stats_store``). An idle host writes nothing on either: the
lease renewals it goes on making are not news.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from actors._metrics import SystemStats
from journal import Journal, JournalClosedError, publish_stats
from journal._stats import StatsStore

__all__ = ["STATS_FORMAT", "StatsPublisher"]

logger = logging.getLogger("chronik.actors")

STATS_FORMAT: Final = "chronik-stats/1"


class StatsPublisher:
    """Publishes one system's stats under a key of its own: host, pid and the
    time it started, so systems sharing a journal never overwrite each other."""

    def __init__(
        self,
        journal: Journal | StatsStore | None,
        stats: Callable[[], SystemStats],
        *,
        period: float = 1.0,
    ) -> None:
        self._journal = journal  # None: a journal that cannot hold stats
        # The LMDB journal's commit figures count this publisher's writes and
        # the lease writes (one group committer takes every write); a store of
        # its own (PostgreSQL: its transactions beside the events') counts
        # neither, so there is nothing of them to take away.
        self._counted_in_commits = isinstance(journal, Journal)
        self._stats = stats
        self._period = period
        self.started_at = time.time()
        started = datetime.fromtimestamp(self.started_at, UTC)
        self.hostname = socket.gethostname()
        self.source_key = f"{self.hostname}/{os.getpid()}/{started:%Y%m%dT%H%M%S.%fZ}"
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="chronik-stats", daemon=True
        )
        # Invariant: _last is what the last successful write held (None: none
        # yet); _own_writes counts those writes, which the commit figures
        # include, so that publishing alone never looks like a change.
        self._last: tuple[Any, ...] | None = None
        self._own_writes = 0
        self._failing = False

    def start(self) -> None:
        if self._journal is not None:
            self._thread.start()

    def close(self) -> None:
        """Stop the thread and write the document once more, marked closed."""
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join()
        self._publish(closed=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            if not self._publish(closed=False):
                return

    def _publish(self, *, closed: bool) -> bool:
        """Write if changed (or closing); False once the journal is gone."""
        assert self._journal is not None
        try:
            stats = self._stats()
            fingerprint = self._fingerprint(stats)
            if fingerprint == self._last and not closed:
                return True
            publish_stats(self._journal, self.source_key, self._document(stats, closed))
        except JournalClosedError:
            return False
        except Exception as error:  # never the system's problem
            level = logging.DEBUG if self._failing else logging.WARNING
            self._failing = True
            logger.log(
                level,
                "could not publish the system's stats to its journal (it runs on; "
                "`chronik stats` shows older figures): %r",
                error,
            )
            return True
        self._failing = False
        self._own_writes += 1
        self._last = fingerprint  # as of before this write: see _fingerprint
        return True

    def _fingerprint(self, stats: SystemStats) -> tuple[Any, ...]:
        values = stats.as_dict()
        commits = values.pop("commits")
        # Lease renewals go on while the system is idle: no news either.
        lease_writes = values.pop("lease_writes")
        writes = commits["writes"]
        if self._counted_in_commits:
            writes -= self._own_writes + lease_writes
        return (tuple(values.items()), writes, commits["failed_groups"])

    def _document(self, stats: SystemStats, closed: bool) -> dict[str, Any]:
        return {
            "format": STATS_FORMAT,
            "hostname": self.hostname,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "updated_at": time.time(),
            "closed": closed,
            "stats": stats.as_dict(),
        }
