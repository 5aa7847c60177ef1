"""Values the journal cannot store fail in the caller's thread, alone, naming them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent, Tracking

from journal import (
    Journal,
    LMDBProcessRecorder,
    MsgpackTranscoder,
    TrackingValueError,
    UnencodableValueError,
)


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[LMDBProcessRecorder]:
    journal = Journal.open(str(tmp_path))
    yield LMDBProcessRecorder(journal)
    journal.close()


@pytest.mark.parametrize(
    ("name", "notification_id"), [("", 1), ("x" * 600, 1), ("app", -1), ("app", 2**64)]
)
def test_unstorable_tracking_is_rejected_with_its_values_and_nothing_is_written(
    recorder: LMDBProcessRecorder, name: str, notification_id: int
) -> None:
    event = StoredEvent(uuid.uuid4(), 1, "topic", b"state")
    with pytest.raises(TrackingValueError) as raised:
        recorder.insert_events([event], tracking=Tracking(name, notification_id))
    assert raised.value.notification_id == notification_id
    with pytest.raises(TrackingValueError):
        recorder.insert_tracking(Tracking(name, notification_id))
    assert recorder.max_notification_id() is None
    assert recorder.max_tracking_id(name) is None


def test_unstorable_tracking_does_not_fail_writes_merged_with_it(
    recorder: LMDBProcessRecorder,
) -> None:
    failures: list[BaseException] = []
    rejections: list[BaseException] = []

    def good(barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "t", b"")])
        except Exception as error:  # collected, asserted below
            failures.append(error)

    def bad(barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            recorder.insert_events(
                [StoredEvent(uuid.uuid4(), 1, "t", b"")], tracking=Tracking("", 1)
            )
        except Exception as error:  # collected, asserted below
            rejections.append(error)

    for _ in range(10):
        barrier = threading.Barrier(8)

        threads = [threading.Thread(target=good, args=(barrier,)) for _ in range(7)]
        threads.append(threading.Thread(target=bad, args=(barrier,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert len(rejections) == 10
    assert all(isinstance(error, TrackingValueError) for error in rejections)
    assert recorder.max_notification_id() == 70


def test_a_lone_surrogate_is_named_with_where_it_was() -> None:
    with pytest.raises(UnencodableValueError) as raised:
        MsgpackTranscoder().encode({"lines": [1, "\ud800"]})
    assert raised.value.location == "value['lines'][1]"
    assert "surrogate" in str(raised.value)
