"""Several processes on one journal, subscriptions across threads and processes, and
one shared environment per path per process."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent

from journal import (
    Journal,
    JournalClosedError,
    JournalReader,
    JournalSettings,
    LMDBApplicationRecorder,
)
from tests.journal._subprocess import Child

WRITER = "tests.journal._writer"
TOPIC = "tests.journal.test_multiprocess:Appended"
SUBSCRIPTION_TIMEOUT = 5.0


def read_acks(child: Child) -> list[dict[str, Any]]:
    """A writer's acknowledgements, up to its "done"."""
    acks = []
    while (line := child.read_line()) != "done":
        acks.append(json.loads(line))
    return acks


def collect(subscription: Any, count: int) -> list[Any]:
    """The next ``count`` notifications, or fewer if they do not come in time."""
    seen: list[Any] = []
    stopper = threading.Timer(SUBSCRIPTION_TIMEOUT, subscription.stop)
    stopper.start()
    try:
        for notification in subscription:
            seen.append(notification)
            if len(seen) == count:
                break
    finally:
        stopper.cancel()
    return seen


def versions(recorder: LMDBApplicationRecorder, stream: UUID | str) -> list[int]:
    return [e.originator_version for e in recorder.select_events(stream)]


def assert_verifies(path: str) -> None:
    with JournalReader(path) as reader:
        report = reader.verify()
    assert report.ok, report.problems


@pytest.mark.multiprocess
def test_two_processes_appending_to_different_streams_both_land_with_gapless_ids(
    recorder: LMDBApplicationRecorder, journal_path: str
) -> None:
    with (
        Child(WRITER, "append", journal_path, "left", "100", "1") as left,
        Child(WRITER, "append", journal_path, "right", "100", "2") as right,
    ):
        left.expect("ready")
        right.expect("ready")
        left.send("go")
        right.send("go")
        acks = read_acks(left) + read_acks(right)
        assert (left.wait(), right.wait()) == (0, 0)

    all_ids = []
    for stream in ("left", "right"):
        stream_acks = [a for a in acks if a["stream"] == stream]
        total = sum(a["count"] for a in stream_acks)
        stored = recorder.select_events(stream)
        assert [e.originator_version for e in stored] == list(range(1, total + 1))
        for ack in stream_acks:
            assert ack["ids"] == list(
                range(ack["ids"][0], ack["ids"][0] + ack["count"])
            )
            all_ids.extend(ack["ids"])
    assert sorted(all_ids) == list(range(1, len(all_ids) + 1))
    assert recorder.max_notification_id() == len(all_ids)
    log = recorder.select_notifications(start=1, limit=len(all_ids) + 1)
    by_id = {n.id: (n.originator_id, n.originator_version) for n in log}
    for ack in acks:
        expected = [(ack["stream"], ack["first"] + i) for i in range(ack["count"])]
        assert [by_id[i] for i in ack["ids"]] == expected
    assert_verifies(journal_path)


@pytest.mark.multiprocess
def test_two_processes_appending_the_same_versions_at_once_give_one_winner(
    recorder: LMDBApplicationRecorder, journal_path: str
) -> None:
    rounds = 10
    winners = []
    with (
        Child(WRITER, "race", journal_path, "north") as north,
        Child(WRITER, "race", journal_path, "south") as south,
    ):
        north.expect("ready")
        south.expect("ready")
        for round_number in range(rounds):
            stream = str(uuid4())
            north.send(f"{stream} 3")
            south.send(f"{stream} 3")
            answers = {"north": north.read_line(), "south": south.read_line()}
            won = [name for name, answer in answers.items() if answer.startswith("won")]
            lost = [a for a in answers.values() if a == "lost EventConflictError"]
            assert len(won) == 1, f"round {round_number}: {answers}"
            assert len(lost) == 1, f"round {round_number}: {answers}"
            stored = recorder.select_events(stream)
            assert [(e.originator_version, e.state) for e in stored] == [
                (v, won[0].encode()) for v in (1, 2, 3)
            ]
            ids = json.loads(answers[won[0]].removeprefix("won "))
            assert ids == list(range(3 * round_number + 1, 3 * round_number + 4))
            winners.append(won[0])
    assert recorder.max_notification_id() == 3 * rounds
    assert_verifies(journal_path)
    print("winners:", winners)


@pytest.mark.multiprocess
def test_a_subscriber_sees_events_another_process_commits(
    recorder: LMDBApplicationRecorder, journal_path: str
) -> None:
    recorder.insert_events([StoredEvent("before", 1, TOPIC, b"")])
    with recorder.subscribe(gt=recorder.max_notification_id()) as subscription:
        with Child(WRITER, "append", journal_path, "elsewhere", "20", "3") as writer:
            writer.expect("ready")
            writer.send("go")
            acks = read_acks(writer)
        acked_at = time.monotonic()
        expected_ids = [i for ack in acks for i in ack["ids"]]
        seen = collect(subscription, len(expected_ids))
        waited = time.monotonic() - acked_at

    assert [n.id for n in seen] == expected_ids, f"gave up after {waited:.2f} s"
    assert [n.originator_id for n in seen] == ["elsewhere"] * len(expected_ids)
    assert [n.originator_version for n in seen] == list(range(1, len(seen) + 1))
    assert waited < 2.0, f"the last notification came {waited:.2f} s after its commit"


def test_a_subscriber_sees_events_another_thread_of_this_process_commits(
    recorder: LMDBApplicationRecorder,
) -> None:
    stream = uuid4()

    def append() -> None:
        for version in range(1, 51):
            recorder.insert_events([StoredEvent(stream, version, TOPIC, b"")])
            time.sleep(0.001)

    with recorder.subscribe() as subscription:
        writer = threading.Thread(target=append)
        writer.start()
        seen = collect(subscription, 50)
        writer.join()

    assert [n.id for n in seen] == list(range(1, 51))
    assert [(n.originator_id, n.originator_version) for n in seen] == [
        (stream, v) for v in range(1, 51)
    ]


def test_opening_one_path_twice_in_a_process_shares_one_environment(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal"
    first = Journal.open(str(path))
    # Another spelling of the same directory is the same journal.
    os.symlink(path, tmp_path / "alias")
    second = Journal.open(str(tmp_path / "alias") + os.sep)
    shared = first.store
    assert second.store is shared
    assert second.store.env is shared.env

    stream = uuid4()
    LMDBApplicationRecorder(first).insert_events([StoredEvent(stream, 1, TOPIC, b"")])
    through_second = LMDBApplicationRecorder(second)
    assert versions(through_second, stream) == [1]

    first.close()
    assert first.closed
    assert not second.closed
    through_second.insert_events([StoredEvent(stream, 2, TOPIC, b"")])
    assert versions(through_second, stream) == [1, 2]
    with pytest.raises(JournalClosedError):
        LMDBApplicationRecorder(first)

    second.close()
    with pytest.raises(JournalClosedError):
        through_second.select_events(stream)
    # Closed by its last handle: the next open makes a new environment on the data.
    with Journal.open(str(path)) as reopened:
        assert reopened.store is not shared
        assert versions(LMDBApplicationRecorder(reopened), stream) == [1, 2]


class Counter(Aggregate):
    def __init__(self) -> None:
        self.count = 0

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


def test_two_applications_on_one_path_share_the_journal_and_outlive_each_other(
    tmp_path: Path,
) -> None:
    env = {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": str(tmp_path / "journal")}
    first: Application[UUID] = Application(env=env)
    second: Application[UUID] = Application(env=env)
    counter = Counter()
    counter.increment()
    first.save(counter)
    assert second.repository.get(counter.id).count == 1

    first.close()
    again: Counter = second.repository.get(counter.id)
    again.increment()
    second.save(again)
    assert second.repository.get(counter.id).count == 2
    second.close()


# -- regressions: journal bugs found while these tests were written --


def test_an_audit_reader_opens_a_journal_this_process_has_open_without_fsync(
    journal_path: str,
) -> None:
    # A read-only open has no durability setting to disagree with.
    with Journal.open(JournalSettings(path=journal_path, sync=False)) as journal:
        stream = uuid4()
        LMDBApplicationRecorder(journal).insert_events(
            [StoredEvent(stream, 1, TOPIC, b"")]
        )
        with JournalReader(journal_path) as reader:
            assert [e.originator_version for e in reader.stream(stream)] == [1]


@pytest.mark.multiprocess
def test_an_audit_reader_opened_on_a_new_journal_sees_events_written_later(
    journal_path: str,
) -> None:
    # The reader opens before the events database exists; another process makes it.
    Journal.open(journal_path).close()  # a new journal: its format marker only
    with JournalReader(journal_path) as reader:
        assert reader.max_notification_id() is None
        with Child(WRITER, "append", journal_path, "later", "3", "4") as writer:
            writer.expect("ready")
            writer.send("go")
            acks = read_acks(writer)
        written = sum(ack["count"] for ack in acks)
        assert reader.max_notification_id() == written
        assert reader.verify().events == written
        assert len(list(reader.stream("later"))) == written


@pytest.mark.parametrize("operation", ["read", "write"])
def test_a_call_waiting_at_the_gate_when_the_journal_closes_raises_journal_closed(
    recorder: LMDBApplicationRecorder, operation: str
) -> None:
    store = recorder.journal.store
    enter_shared = store.gate.enter_shared  # what reads and writes go through
    arrived = threading.Event()

    def signal_then_enter() -> None:
        arrived.set()
        enter_shared()

    store.gate.enter_shared = signal_then_enter  # type: ignore[method-assign]
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            if operation == "read":
                recorder.select_events(uuid4())
            else:
                recorder.insert_events([StoredEvent(uuid4(), 1, TOPIC, b"")])
        except BaseException as error:
            outcome.append(error)

    caller = threading.Thread(target=call)
    closer = threading.Thread(target=recorder.journal.close)
    # Hold the gate (as a map resize does) while the call reaches it and close()
    # queues for it; close() waits exclusively, so it goes first.
    with store.gate.exclusive():
        caller.start()
        assert arrived.wait(SUBSCRIPTION_TIMEOUT)
        closer.start()
        deadline = time.monotonic() + SUBSCRIPTION_TIMEOUT
        while not store.gate._waiting_exclusive:
            assert time.monotonic() < deadline, "close() never reached the gate"
            time.sleep(0.001)
    caller.join(SUBSCRIPTION_TIMEOUT)
    closer.join(SUBSCRIPTION_TIMEOUT)
    assert store.closed
    assert len(outcome) == 1, "the call returned although the journal closed under it"
    assert isinstance(outcome[0], JournalClosedError), repr(outcome[0])


@pytest.mark.multiprocess
def test_verifying_while_two_processes_append_finds_nothing_wrong(
    journal_path: str,
) -> None:
    Journal.open(journal_path).close()  # create it, so a reader can open it
    with (
        Child(WRITER, "append", journal_path, "left", "300", "3") as left,
        Child(WRITER, "append", journal_path, "right", "300", "4") as right,
    ):
        left.expect("ready")
        right.expect("ready")
        left.send("go")
        right.send("go")
        seen: list[int] = []
        with JournalReader(journal_path) as reader:  # read-only: another process
            while len(seen) < 3 or None in (left.process.poll(), right.process.poll()):
                report = reader.verify()
                assert report.ok, report.problems
                seen.append(report.notifications)
        assert (left.wait(), right.wait()) == (0, 0)
    assert len(set(seen)) > 1, f"no verification overlapped the writers: {seen}"
    assert_verifies(journal_path)
