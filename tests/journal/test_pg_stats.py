"""The journal's figures, as ``chronik stats`` shows them, on both backends
(issue 14): LMDB's ``journal_figures`` and PostgreSQL's ``postgres_figures``
count the same journal the same way."""

from __future__ import annotations

from typing import Any

import pytest

from actors import ActorSystem, ManualClock
from journal import (
    Journal,
    JournalSettings,
    PostgresLocation,
    journal_figures,
    open_reader,
    parse_location,
)
from journal._pg_stats import STATS_TABLE, postgres_figures
from tests._postgres_server import journal_url
from tests.cli import _flows as flows


def _figures(location: str) -> dict[str, Any]:
    where = parse_location(location)
    if isinstance(where, PostgresLocation):
        datastore = where.datastore(pool_size=1, max_overflow=0)
        try:
            return postgres_figures(datastore, where.display).as_dict()
        finally:
            datastore.close()
    journal = Journal.open(JournalSettings(path=location), readonly=True)
    try:
        return journal_figures(journal).as_dict()
    finally:
        journal.close()


@pytest.fixture
def written(journal_location: str) -> str:
    """A journal of three runs, snapshotted every other event."""
    with ActorSystem.open(
        journal_location, clock=ManualClock(), idle_timeout=None, snapshot_every=2
    ) as system:
        for index in range(3):
            system.spawn(flows.ticker, 2, id=f"run-{index}").result(timeout=10)
    return journal_location


def test_figures_count_the_events_the_log_and_the_snapshots(written: str) -> None:
    figures = _figures(written)
    with open_reader(written) as reader:
        log = list(reader.notifications())
        last = reader.max_notification_id()
        streams = {str(n.originator_id) for n in log}
        snapshots = sum(
            len(list(reader.stream(stream, purpose="snapshots"))) for stream in streams
        )
    assert figures["path"] == parse_location(written).display
    assert figures["events"] == figures["notifications"] == len(log) == last
    assert figures["snapshots"] == snapshots > 0
    assert figures["disk_bytes"] > 0


def test_postgres_figures_measure_each_table_of_the_schema(postgres_dsn: str) -> None:
    with journal_url(postgres_dsn) as url:
        ActorSystem.open(url, clock=ManualClock()).close()
        figures = _figures(url)
    tables = figures["tables"]
    assert {"chronik_format", "chronik_leases", STATS_TABLE} <= set(tables)
    assert {"chronikruns_events", "chronikruns_snapshots"} <= set(tables)
    assert figures["disk_bytes"] == sum(tables.values())
    assert all(size > 0 for size in tables.values())  # a table has its pages
    assert "file_bytes" not in figures  # LMDB's file: no meaning on a server
