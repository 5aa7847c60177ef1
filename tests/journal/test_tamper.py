"""Tamper evidence: verification names the first position someone changed."""

from __future__ import annotations

import os
from collections.abc import Iterator

import lmdb
import pytest
from eventsourcing.persistence import StoredEvent

from journal import (
    AnyJournalReader,
    Journal,
    JournalReader,
    LMDBAggregateRecorder,
    LMDBApplicationRecorder,
)
from journal._keys import notification_key
from journal._store import NOTIFICATIONS_DB
from tests.journal._tamper import (
    copy_journal,
    delete_event,
    flip_byte,
    insert_event,
    log_entry,
    swap_positions,
)

STREAMS = ["order-1", "order-2", "order-3"]
EVENTS = 30  # ten per stream, committed in batches that mix streams


def batches() -> Iterator[list[StoredEvent]]:
    """The journal's EVENTS events, in the batches that commit them: two
    versions of each stream a batch."""
    for version in range(1, 11, 2):
        yield [
            StoredEvent(stream, v, f"tests:Event{v}", f"{stream}/{v}".encode() * 3)
            for stream in STREAMS
            for v in (version, version + 1)
        ]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("tamper") / "journal")
    journal = Journal.open(path)
    recorder = LMDBApplicationRecorder(journal)
    snapshots = LMDBAggregateRecorder(journal, "snapshots")
    for batch in batches():
        recorder.insert_events(batch)
    snapshots.insert_events([StoredEvent("order-1", 5, "tests:Snap", b"snapshot")])
    journal.close()
    return path


@pytest.fixture
def copy(original: str, tmp_path: str) -> str:
    return copy_journal(original, os.path.join(tmp_path, "copy"))


def verify(path: str) -> tuple[int | None, list[str]]:
    with JournalReader(path) as reader:
        report = reader.verify()
    return report.first_bad, [str(problem) for problem in report.problems]


def check_untouched(reader: AnyJournalReader) -> None:
    """The untouched journal of ``batches`` verifies, whole and stream by
    stream, and reports its head (also on PostgreSQL: ``test_pg_tamper.py``)."""
    report = reader.verify()
    assert report.ok, report.problems
    assert (report.events, report.notifications) == (EVENTS, EVENTS)
    assert report.max_notification_id == EVENTS
    assert report.head is not None
    assert len(report.head) == 64
    for stream in STREAMS:
        assert reader.verify(stream).ok, reader.verify(stream).problems


def test_an_untouched_journal_verifies_and_reports_its_head(original: str) -> None:
    with JournalReader(original) as reader:
        check_untouched(reader)


@pytest.mark.parametrize("position", [1, 7, 18, EVENTS])
def test_a_changed_byte_in_an_event_is_named_at_its_position(
    copy: str, position: int
) -> None:
    flip_byte(copy, position)
    first_bad, problems = verify(copy)
    assert first_bad == position, problems
    assert "altered" in problems[0]


def test_every_byte_of_a_stored_event_is_covered(original: str, tmp_path: str) -> None:
    position = 11
    with JournalReader(original) as reader:
        page = reader._events.select_notifications(position, 1)
    length = len(page[0].state) + 60  # the stored row is a little longer
    for offset in range(length):
        target = copy_journal(original, os.path.join(tmp_path, f"c{offset}"))
        try:
            flip_byte(target, position, offset)
        except IndexError:
            break  # past the end of the row
        first_bad, problems = verify(target)
        assert first_bad == position, (offset, problems)


def test_a_changed_byte_in_the_log_is_named_at_its_position(copy: str) -> None:
    env = lmdb.open(copy, max_dbs=64)
    with env.begin(write=True) as txn:
        log = env.open_db(NOTIFICATIONS_DB, txn=txn, create=False)
        key, digest = log_entry(txn, log, 9)
        txn.put(notification_key(9), key + bytes([digest[0] ^ 1]) + digest[1:], db=log)
    env.close()
    first_bad, problems = verify(copy)
    assert first_bad == 9, problems


@pytest.mark.parametrize("position", [1, 14, EVENTS])
def test_a_deleted_event_is_named_at_its_position(copy: str, position: int) -> None:
    delete_event(copy, position)
    first_bad, problems = verify(copy)
    assert first_bad == position, problems


def test_a_deleted_last_event_is_caught_by_the_head(copy: str) -> None:
    delete_event(copy, EVENTS)
    first_bad, problems = verify(copy)
    assert first_bad == EVENTS
    assert any("head" in problem for problem in problems)


@pytest.mark.parametrize(("first", "second"), [(3, 4), (5, 20), (1, EVENTS)])
def test_reordered_events_are_named_at_the_first_moved_position(
    copy: str, first: int, second: int
) -> None:
    swap_positions(copy, first, second)
    first_bad, problems = verify(copy)
    assert first_bad == first, problems


@pytest.mark.parametrize("position", [1, 16, EVENTS])
def test_an_inserted_event_is_named_at_its_position(copy: str, position: int) -> None:
    insert_event(copy, position)
    first_bad, problems = verify(copy)
    assert first_bad == position, problems


def test_an_event_inserted_at_the_end_without_moving_the_head_is_named(
    copy: str,
) -> None:
    insert_event(copy, EVENTS, update_head=False)
    first_bad, problems = verify(copy)
    assert first_bad == EVENTS, problems
    assert any("past the journal's head" in problem for problem in problems)


def test_verifying_one_stream_names_the_position_of_its_changed_event(
    copy: str,
) -> None:
    flip_byte(copy, 8)
    with JournalReader(copy) as reader:
        bad = [s for s in STREAMS if not reader.verify(s).ok]
        reports = {s: reader.verify(s) for s in bad}
    assert len(bad) == 1
    assert reports[bad[0]].first_bad == 8


def test_a_changed_snapshot_is_reported_by_its_stream_and_version(copy: str) -> None:
    env = lmdb.open(copy, max_dbs=64)
    with env.begin(write=True) as txn:
        snapshots = env.open_db(b"chronik:agg:snapshots", txn=txn, create=False)
        key, value = next(iter(txn.cursor(db=snapshots)))
        txn.put(key, value.replace(b"snapshot", b"snapsh0t"), db=snapshots)
    env.close()
    with JournalReader(copy) as reader:
        report = reader.verify()
    assert not report.ok
    [problem] = report.problems
    assert (problem.originator_id, problem.version) == ("order-1", 5)
    assert "snapshots" in problem.message


def test_progress_is_reported_while_verifying(original: str) -> None:
    seen: list[int] = []
    with JournalReader(original) as reader:
        assert reader.verify(progress=seen.append).ok
    assert seen
    assert seen[-1] == EVENTS
