"""Tamper evidence on a PostgreSQL journal (issue 14): verification recomputes
both hash chains and names the first position someone changed with SQL, as on
LMDB (``test_tamper.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

psycopg = pytest.importorskip("psycopg")

from eventsourcing.persistence import StoredEvent  # noqa: E402
from psycopg.sql import SQL, Identifier  # noqa: E402

from journal import open_reader  # noqa: E402
from journal._location import PostgresLocation, parse_location  # noqa: E402
from journal._pg_format import check_format  # noqa: E402
from journal._pg_reader import EVENTS_TABLE, SNAPSHOTS_TABLE  # noqa: E402
from journal._postgres import (  # noqa: E402
    PostgresJournalRecorder,
    PostgresSnapshotRecorder,
)
from tests._postgres_server import connection_settings, journal_url  # noqa: E402
from tests.journal.test_tamper import EVENTS, batches, check_untouched  # noqa: E402

SNAPSHOTS = SNAPSHOTS_TABLE


@pytest.fixture
def url(postgres_dsn: str) -> Iterator[str]:
    """A journal of EVENTS events, written by chronik's recorder."""
    with ExitStack() as stack:
        url = stack.enter_context(journal_url(postgres_dsn, "chronik_tamper"))
        location = parse_location(url)
        assert isinstance(location, PostgresLocation)
        datastore = location.datastore(originator_id_type="text", pool_size=2)
        stack.callback(datastore.close)
        check_format(datastore, url)
        recorder = PostgresJournalRecorder(datastore, events_table_name=EVENTS_TABLE)
        recorder.create_table()
        for batch in batches():
            recorder.insert_events(batch)
        snapshots = PostgresSnapshotRecorder(datastore, events_table_name=SNAPSHOTS)
        snapshots.create_table()
        snapshots.insert_events([StoredEvent("order-1", 5, "tests:Snap", b"snapshot")])
        snapshots.insert_events(
            [
                StoredEvent("order-1", 9, "tests:Snap", b"snapshot 9"),
                StoredEvent("order-2", 9, "tests:Snap", b"snapshot 9"),
            ]
        )
        yield url


def sql(url: str, statement: str, *params: object, table: str = EVENTS_TABLE) -> None:
    """Run ``statement`` on one of the journal's tables (``{t}``: the events
    by default), as someone with access to the database could."""
    location = parse_location(url)
    assert isinstance(location, PostgresLocation)
    settings = connection_settings(url.partition("?")[0])
    qualified = SQL("{}.{}").format(Identifier(location.schema), Identifier(table))
    with psycopg.connect(autocommit=True, **settings) as conn:
        conn.execute(SQL(statement).format(t=qualified), params)


def verify(url: str) -> tuple[int | None, list[str]]:
    with open_reader(url) as reader:
        report = reader.verify()
    return report.first_bad, [str(problem) for problem in report.problems]


def test_an_untouched_journal_verifies_and_reports_its_head(url: str) -> None:
    with open_reader(url) as reader:
        check_untouched(reader)
        seen: list[int] = []
        assert reader.verify(progress=seen.append).ok
        assert seen == [EVENTS]


@pytest.mark.parametrize("position", [1, 7, 18, EVENTS])
def test_a_changed_byte_in_an_event_is_named_at_its_position(
    url: str, position: int
) -> None:
    sql(
        url,
        "UPDATE {t} SET state = overlay(state placing "
        "set_byte(substring(state from 1 for 1), 0, "
        "get_byte(state, 0) # 1) from 1 for 1) WHERE notification_id = %s",
        position,
    )
    first_bad, problems = verify(url)
    assert first_bad == position, problems
    assert "altered" in problems[0]
    with open_reader(url) as reader:
        stream = next(
            p.originator_id for p in reader.verify().problems if p.position == position
        )
        assert not reader.verify(stream).ok


def test_a_changed_topic_is_named(url: str) -> None:
    sql(url, "UPDATE {t} SET topic = 'tests:Forged' WHERE notification_id = 12")
    first_bad, problems = verify(url)
    assert first_bad == 12, problems


def test_a_removed_event_is_named_where_the_log_jumps(url: str) -> None:
    sql(url, "DELETE FROM {t} WHERE notification_id = 10")
    first_bad, problems = verify(url)
    assert first_bad == 10, problems
    assert "jumps from position 9 to 11" in problems[0]


def test_events_removed_at_the_end_are_named_against_the_head(url: str) -> None:
    sql(url, "DELETE FROM {t} WHERE notification_id > 27")
    first_bad, problems = verify(url)
    assert first_bad == 28, problems
    assert "removed" in problems[0]


def test_an_event_inserted_at_the_end_is_named(url: str) -> None:
    sql(
        url,
        "INSERT INTO {t} SELECT originator_id, originator_version + 100, topic, "
        "state, notification_id + 1, hash, log_hash FROM {t} "
        "WHERE notification_id = %s",
        EVENTS,
    )
    first_bad, problems = verify(url)
    assert first_bad == EVENTS + 1, problems
    assert "inserted at the end" in " ".join(problems)


def test_swapped_positions_are_named_at_the_first(url: str) -> None:
    # Through a free id: the notification id index is unique.
    sql(url, "UPDATE {t} SET notification_id = 0 WHERE notification_id = 5")
    sql(url, "UPDATE {t} SET notification_id = 5 WHERE notification_id = 6")
    sql(url, "UPDATE {t} SET notification_id = 6 WHERE notification_id = 0")
    first_bad, problems = verify(url)
    assert first_bad == 5, problems


def test_a_changed_log_hash_is_named(url: str) -> None:
    sql(
        url,
        "UPDATE {t} SET log_hash = sha256(log_hash) WHERE notification_id = 3",
    )
    first_bad, problems = verify(url)
    assert first_bad == 3, problems
    assert "does not chain" in problems[0]


def test_a_whole_chain_recomputed_without_the_head_is_still_named(url: str) -> None:
    """Rewriting an event and every later hash needs the head rewritten too:
    without it, the log's end no longer matches the head."""
    sql(
        url,
        "UPDATE {t} SET log_hash = sha256(log_hash) WHERE notification_id = %s",
        EVENTS,
    )
    first_bad, problems = verify(url)
    assert first_bad == EVENTS, problems


@pytest.mark.parametrize("version", [5, 9])
def test_a_changed_snapshot_is_named_by_its_stream_and_version(
    url: str, version: int
) -> None:
    sql(
        url,
        "UPDATE {t} SET state = state || '\\x00'::bytea "
        "WHERE originator_id = 'order-1' AND originator_version = %s",
        version,
        table=SNAPSHOTS,
    )
    with open_reader(url) as reader:
        report = reader.verify()
    assert not report.ok
    (problem,) = report.problems  # a later snapshot chains from the stored hash
    assert (problem.position, problem.originator_id, problem.version) == (
        None,
        "order-1",
        version,
    )
    assert SNAPSHOTS in problem.message


def test_a_removed_snapshot_breaks_its_stream_s_chain(url: str) -> None:
    sql(url, "DELETE FROM {t} WHERE originator_version = 5", table=SNAPSHOTS)
    with open_reader(url) as reader:
        report = reader.verify()
    assert [(p.originator_id, p.version) for p in report.problems] == [("order-1", 9)]
