"""A writer for test_crash to SIGKILL: appends batches until it is killed.

    python -m tests.journal._crash_writer PATH TRIAL SEED THREADS

Each of THREADS threads owns the streams ``crash-<thread>-0`` and ``crash-<thread>-1``
(shared by every trial, so each trial continues the last one's streams), and loops:
pick one of its streams, append a batch of 1..20 events after its last version
(fsync on), then print one JSON acknowledgement line and flush. Each event's state
is JSON ``{"batch", "size", "index"}``, so a reader can tell a whole batch from part
of one. Prints "ready" once the journal is open. Stops by itself after
``MAX_BATCHES`` per thread, so a writer orphaned by a dead test does not run on.
"""

from __future__ import annotations

import json
import random
import sys
import threading

from eventsourcing.persistence import StoredEvent

from journal import Journal, LMDBApplicationRecorder

TOPIC = "tests.journal._crash_writer:Appended"
STREAMS_PER_THREAD = 2
MAX_BATCHES = 5000
MAX_BATCH_SIZE = 20

_say_lock = threading.Lock()


def streams_of(thread: int) -> list[str]:
    return [f"crash-{thread}-{k}" for k in range(STREAMS_PER_THREAD)]


def batch_state(batch: str, size: int, index: int) -> bytes:
    return json.dumps({"batch": batch, "size": size, "index": index}).encode()


def main(path: str, trial: str, seed: int, threads: int) -> None:
    journal = Journal.open(path)
    recorder = LMDBApplicationRecorder(journal)
    _say("ready")
    workers = [
        threading.Thread(
            target=_write_batches,
            args=(recorder, f"{trial}:{t}", streams_of(t), random.Random(seed + t)),
        )
        for t in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    journal.close()


def _write_batches(
    recorder: LMDBApplicationRecorder, tag: str, streams: list[str], rng: random.Random
) -> None:
    versions = {}
    for stream in streams:
        last = recorder.select_events(stream, desc=True, limit=1)
        versions[stream] = last[0].originator_version if last else 0
    for number in range(MAX_BATCHES):
        stream = rng.choice(streams)
        size = rng.randint(1, MAX_BATCH_SIZE)
        first = versions[stream] + 1
        batch = f"{tag}:{number}"
        events = [
            StoredEvent(stream, first + i, TOPIC, batch_state(batch, size, i))
            for i in range(size)
        ]
        ids = recorder.insert_events(events)
        versions[stream] += size
        ack = {"batch": batch, "stream": stream, "first": first, "count": size}
        _say(json.dumps({**ack, "ids": ids}))


def _say(line: str) -> None:
    with _say_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
