"""``select_streams``: many streams read in one transaction, each exactly as
``select_events`` reads it (what opening a journal of many runs relies on)."""

from __future__ import annotations

import random
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent

from journal import LMDBApplicationRecorder

TOPIC = "tests:Event"


def _fill(recorder: LMDBApplicationRecorder) -> dict[UUID | str, int]:
    """Streams of 0 to 6 events (str and UUID ids, neighbours in key order:
    'run-1' beside 'run-10'), appended interleaved; their lengths."""
    rng = random.Random(7)
    lengths: dict[UUID | str, int] = {f"run-{i}": rng.randrange(7) for i in range(30)}
    lengths.update({uuid4(): rng.randrange(7) for _ in range(10)})
    written = dict.fromkeys(lengths, 0)
    while any(written[i] < n for i, n in lengths.items()):
        batch = []
        for stream, n in lengths.items():
            if written[stream] < n:
                written[stream] += 1
                state = f"{stream}:{written[stream]}".encode()
                batch.append(StoredEvent(stream, written[stream], TOPIC, state))
        recorder.insert_events(batch)
    return lengths


def test_each_stream_reads_as_select_events_reads_it(
    recorder: LMDBApplicationRecorder,
) -> None:
    lengths = _fill(recorder)
    wanted = [*lengths, "never-written"]

    found = recorder.select_streams(wanted)

    assert set(found) == set(wanted)
    for stream in wanted:
        assert found[stream] == list(recorder.select_events(stream))
    assert found["never-written"] == []


def test_after_a_version_and_last_only(recorder: LMDBApplicationRecorder) -> None:
    lengths = _fill(recorder)
    after = {stream: n // 2 for stream, n in lengths.items()}

    later = recorder.select_streams(lengths, gt=after)
    last = recorder.select_streams(lengths, last_only=True)
    last_after = recorder.select_streams(lengths, last_only=True, gt=after)

    for stream, n in lengths.items():
        assert later[stream] == list(recorder.select_events(stream, gt=after[stream]))
        assert last[stream] == list(recorder.select_events(stream, desc=True, limit=1))
        expected = [] if n == after[stream] else last[stream]
        assert last_after[stream] == expected
