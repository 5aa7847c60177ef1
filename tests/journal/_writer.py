"""A journal writer in its own process, driven over stdin by test_multiprocess.

python -m tests.journal._writer append PATH STREAM BATCHES SEED
    prints "ready", waits for "go", appends BATCHES batches of 1..10 events to
    STREAM (after its last version), printing one JSON acknowledgement per batch
    ({"stream", "first", "count", "ids"}) once insert_events has returned, then
    prints "done".

python -m tests.journal._writer race PATH NAME
    prints "ready", then for each line "STREAM COUNT" tries to append versions
    1..COUNT of STREAM (state: NAME) and prints "won <JSON ids>" or
    "lost <error type>"; exits at end of input.
"""

from __future__ import annotations

import json
import random
import sys

from eventsourcing.persistence import IntegrityError, StoredEvent

from journal import Journal, LMDBApplicationRecorder

TOPIC = "tests.journal._writer:Appended"


def main(argv: list[str]) -> None:
    command, path, *args = argv
    journal = Journal.open(path)
    try:
        recorder = LMDBApplicationRecorder(journal)
        if command == "append":
            stream, batches, seed = args
            _append(recorder, stream, int(batches), random.Random(int(seed)))
        elif command == "race":
            (name,) = args
            _race(recorder, name)
        else:
            raise SystemExit(f"unknown command {command!r}: use append or race")
    finally:
        journal.close()


def _append(
    recorder: LMDBApplicationRecorder, stream: str, batches: int, rng: random.Random
) -> None:
    last = recorder.select_events(stream, desc=True, limit=1)
    version = last[0].originator_version if last else 0
    _say("ready")
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected 'go' on stdin")
    for _ in range(batches):
        count = rng.randint(1, 10)
        events = [
            StoredEvent(stream, version + 1 + i, TOPIC, b"%d" % (version + 1 + i))
            for i in range(count)
        ]
        ids = recorder.insert_events(events)
        ack = {"stream": stream, "first": version + 1, "count": count, "ids": ids}
        _say(json.dumps(ack))
        version += count
    _say("done")


def _race(recorder: LMDBApplicationRecorder, name: str) -> None:
    _say("ready")
    for line in sys.stdin:
        stream, count = line.split()
        events = [
            StoredEvent(stream, v, TOPIC, name.encode())
            for v in range(1, int(count) + 1)
        ]
        try:
            ids = recorder.insert_events(events)
        except IntegrityError as error:
            _say(f"lost {type(error).__name__}")
        else:
            _say(f"won {json.dumps(ids)}")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
