"""Group commit: concurrent insert_events calls of one process share transactions,
yet each caller gets its own gapless ids or its own IntegrityError."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent

from journal import (
    EventConflictError,
    Journal,
    JournalReader,
    LMDBApplicationRecorder,
)
from journal._store import _Store

T = TypeVar("T")
Outcome = tuple[Any, BaseException | None]
TOPIC = "tests.journal.test_group_commit:Appended"
THREAD_TIMEOUT = 20.0


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[list[Outcome]]:
    """Each LMDB write transaction committed, as its writes' (result, error)s."""
    recorded: list[list[Outcome]] = []
    run_group_once = _Store._run_group_once

    def recording(self: _Store, writes: list[Any]) -> list[Outcome]:
        outcomes = run_group_once(self, writes)
        recorded.append(outcomes)
        return outcomes

    monkeypatch.setattr(_Store, "_run_group_once", recording)
    return recorded


def events(
    stream: UUID, first: int, count: int, state: bytes = b""
) -> list[StoredEvent]:
    return [StoredEvent(stream, v, TOPIC, state) for v in range(first, first + count)]


def insert(recorder: LMDBApplicationRecorder, batch: list[StoredEvent]) -> list[int]:
    ids = recorder.insert_events(batch)
    assert ids is not None, "an application recorder returns notification ids"
    return list(ids)


def append_batches(
    recorder: LMDBApplicationRecorder, stream: UUID, counts: list[int]
) -> list[list[int]]:
    """Append batches of ``counts`` events to a new stream; each batch's ids."""
    answers, version = [], 1
    for count in counts:
        answers.append(insert(recorder, events(stream, version, count)))
        version += count
    return answers


def run_together(count: int, task: Callable[[int], T]) -> list[T]:
    """Run ``task(0..count-1)`` on ``count`` threads released at once by a barrier."""
    return [f.result(THREAD_TIMEOUT) for f in start_together(count, task)]


def start_together(count: int, task: Callable[[int], T]) -> list[Future[T]]:
    """Start ``task(0..count-1)`` on ``count`` threads released at once; no waiting."""
    barrier = threading.Barrier(count, timeout=THREAD_TIMEOUT)

    def released(index: int) -> T:
        barrier.wait()
        return task(index)

    pool = ThreadPoolExecutor(max_workers=count)
    futures = [pool.submit(released, i) for i in range(count)]
    pool.shutdown(wait=False)
    return futures


def assert_contiguous(ids: Sequence[int], count: int) -> None:
    assert list(ids) == list(range(ids[0], ids[0] + count)), (
        f"one batch of {count} events got ids {list(ids)}, not one contiguous run"
    )


def assert_gapless(ids: list[int], first: int = 1) -> None:
    assert sorted(ids) == list(range(first, first + len(ids))), (
        f"ids are not unique and gapless from {first}: {sorted(ids)}"
    )


def assert_verifies(path: str, events_stored: int) -> None:
    with JournalReader(path) as reader:
        report = reader.verify()
    assert report.ok, report.problems
    assert report.events == events_stored


def notification_ids(recorder: LMDBApplicationRecorder) -> dict[tuple[Any, int], int]:
    """(originator id, version) -> notification id, for the whole log."""
    log = recorder.select_notifications(start=1, limit=1_000_000)
    return {(n.originator_id, n.originator_version): n.id for n in log}


def test_thirty_two_threads_get_unique_gapless_ids_and_each_batch_one_contiguous_run(
    recorder: LMDBApplicationRecorder, journal_path: str, commits: list[list[Outcome]]
) -> None:
    rng = random.Random(32)
    streams = [uuid4() for _ in range(32)]
    plans = [[rng.randint(1, 10) for _ in range(5)] for _ in streams]

    answers = run_together(32, lambda i: append_batches(recorder, streams[i], plans[i]))

    all_ids: list[int] = []
    by_key = notification_ids(recorder)
    for stream, plan, stream_answers in zip(streams, plans, answers, strict=True):
        version = 1
        for count, ids in zip(plan, stream_answers, strict=True):
            assert_contiguous(ids, count)
            assert [by_key[stream, v] for v in range(version, version + count)] == ids
            all_ids.extend(ids)
            version += count
        stored = recorder.select_events(stream)
        assert [e.originator_version for e in stored] == list(range(1, version))
    assert_gapless(all_ids)
    assert recorder.max_notification_id() == len(all_ids)
    assert_verifies(journal_path, len(all_ids))
    # Not asserted (timing), but shown on failure: how the 160 inserts were grouped.
    print("group sizes:", [len(group) for group in commits])


# What each thread of a conflict round does, by its index modulo 3.
CONFLICTING, OWN, RACING = 0, 1, 2
ROUND_THREADS = 24


def test_conflicting_batches_merged_with_good_ones_fail_alone_and_the_good_ones_commit(
    recorder: LMDBApplicationRecorder, journal_path: str, commits: list[list[Outcome]]
) -> None:
    # A merge is timing: repeat rounds until one committed transaction held both a
    # failed and a good write (each round is checked in full either way).
    existing = uuid4()
    recorder.insert_events(events(existing, 1, 3))
    stored = 3
    mixed_groups: list[list[Outcome]] = []
    for _ in range(20):
        first_commit = len(commits)
        stored += _run_conflict_round(recorder, existing)
        mixed_groups += [
            group
            for group in commits[first_commit:]
            if any(error is None for _, error in group)
            and any(error is not None for _, error in group)
        ]
        if mixed_groups:
            break
    assert mixed_groups, (
        "in 20 rounds no transaction merged a conflicting write with a good one; "
        f"group sizes: {[len(g) for g in commits]}"
    )
    assert_verifies(journal_path, stored)


def _run_conflict_round(recorder: LMDBApplicationRecorder, existing: UUID) -> int:
    """Release ROUND_THREADS writers at once and check each one's outcome; return
    how many events they stored.

    CONFLICTING threads append two events to a stream of their own, then repeat
    version 2 of ``existing``; OWN threads append to a stream of their own; RACING
    threads all race for versions 1..2 of one new stream.
    """
    base = recorder.max_notification_id() or 0
    own = [uuid4() for _ in range(ROUND_THREADS)]
    contested = uuid4()

    def attempt(index: int) -> list[int] | IntegrityError:
        batch = {
            CONFLICTING: events(own[index], 1, 2) + events(existing, 2, 1),
            OWN: events(own[index], 1, 1 + index % 5),
            RACING: events(contested, 1, 2, state=b"%d" % index),
        }[index % 3]
        try:
            return insert(recorder, batch)
        except IntegrityError as error:
            return error

    outcomes = dict(enumerate(run_together(ROUND_THREADS, attempt)))

    ids: list[int] = []
    for index, outcome in outcomes.items():
        if index % 3 == CONFLICTING:
            assert isinstance(outcome, EventConflictError), outcome
            assert outcome.originator_id == existing
            assert outcome.originator_version == 2
            assert recorder.select_events(own[index]) == [], (
                f"the failed batch of thread {index} put events of its own stream"
            )
        elif index % 3 == OWN:
            assert not isinstance(outcome, BaseException), outcome
            assert_contiguous(outcome, 1 + index % 5)
            assert len(recorder.select_events(own[index])) == 1 + index % 5
            ids.extend(outcome)
    racers = {i: o for i, o in outcomes.items() if i % 3 == RACING}
    winners = [i for i, o in racers.items() if not isinstance(o, BaseException)]
    assert len(winners) == 1, f"racers' outcomes: {racers}"
    (winner,) = winners
    losers = [o for i, o in racers.items() if i != winner]
    assert all(isinstance(o, EventConflictError) for o in losers), losers
    ids.extend(racers[winner])  # type: ignore[arg-type]
    stored = recorder.select_events(contested)
    assert [e.state for e in stored] == [b"%d" % winner] * 2
    assert_gapless(ids, first=base + 1)
    assert recorder.max_notification_id() == base + len(ids)
    return len(ids)


def test_writes_queued_behind_a_commit_share_the_next_transaction(
    recorder: LMDBApplicationRecorder, commits: list[list[Outcome]]
) -> None:
    # Hold the gate (as a map resize does) so the leader cannot begin; everyone
    # else queues behind it, and the next leader must take the whole queue at once.
    store = recorder.journal.store
    streams = [uuid4() for _ in range(16)]
    before = len(commits)
    with store.gate.exclusive():
        futures = start_together(
            16, lambda i: insert(recorder, events(streams[i], 1, 2))
        )
        _wait_until(lambda: store.committer.queued() == 16)
    answers = [f.result(THREAD_TIMEOUT) for f in futures]

    # The leader took whoever had queued when it began (at least itself); the
    # rest queued behind it and went into one more transaction.
    groups = [len(group) for group in commits[before:]]
    assert sum(groups) == 16
    assert len(groups) <= 2, f"16 queued writes took {len(groups)} commits: {groups}"
    assert_gapless([i for ids in answers for i in ids])


def test_a_subscriber_sees_notification_ids_rise_by_exactly_one_while_threads_commit(
    recorder: LMDBApplicationRecorder,
) -> None:
    rng = random.Random(16)
    streams = [uuid4() for _ in range(16)]
    plans = [[rng.randint(1, 5) for _ in range(10)] for _ in streams]
    total = sum(map(sum, plans))

    seen: list[Notification] = []
    with recorder.subscribe(gt=None) as subscription:
        writers = start_together(
            16, lambda i: append_batches(recorder, streams[i], plans[i])
        )
        stopper = threading.Timer(THREAD_TIMEOUT, subscription.stop)
        stopper.start()
        try:
            for notification in subscription:
                seen.append(notification)
                if len(seen) == total:
                    break
        finally:
            stopper.cancel()
    answers = [f.result(THREAD_TIMEOUT) for f in writers]

    assert [n.id for n in seen] == list(range(1, total + 1))
    seen_by_id = {n.id: (n.originator_id, n.originator_version) for n in seen}
    for stream, stream_answers in zip(streams, answers, strict=True):
        stream_ids = [i for ids in stream_answers for i in ids]
        assert [seen_by_id[i] for i in stream_ids] == [
            (stream, v) for v in range(1, len(stream_ids) + 1)
        ]


def _wait_until(condition: Callable[[], bool], timeout: float = THREAD_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not true after {timeout} s: {condition}"
        time.sleep(0.001)


def test_opening_a_database_while_another_thread_commits_waits_for_it(
    journal_path: str,
) -> None:
    journal = Journal.open(journal_path)
    try:
        store = journal.store
        writing, opened = threading.Event(), threading.Event()

        def slow_write(context: Any) -> None:
            writing.set()
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:  # Python work: needs the GIL
                sum(range(100))

        writer = threading.Thread(target=store.write, args=(slow_write,))
        writer.start()
        assert writing.wait(5)
        opener = threading.Thread(
            target=lambda: (store.db(b"tests:opened-meanwhile"), opened.set()),
            daemon=True,  # if it deadlocks, the test fails instead of hanging
        )
        opener.start()
        assert opened.wait(10), "opening a database deadlocked with a commit"
        writer.join(5)
    finally:
        journal.close()


@pytest.mark.parametrize("chain", [True, False], ids=["chain", "all-at-once"])
def test_every_member_of_a_group_is_woken_with_its_own_outcome(chain: bool) -> None:
    """However a group's members are woken (one after another, or all at once),
    each gets its own result or error, and writers queued meanwhile share the
    next group."""
    from journal._groupcommit import GroupCommitter

    first_in = threading.Event()
    release = threading.Event()
    groups: list[list[int]] = []

    def run_group(writes: list[Any]) -> list[tuple[Any, BaseException | None]]:
        values = [write(None) for write in writes]
        groups.append(values)
        if len(groups) == 1:
            first_in.set()
            assert release.wait(10)
        return [(None, ValueError(v)) if v % 5 == 0 else (v * 10, None) for v in values]

    committer = GroupCommitter(run_group, chain=chain)
    outcomes: dict[int, Any] = {}

    def write(value: int) -> None:
        try:
            outcomes[value] = committer.submit(lambda _txn: value)
        except ValueError as error:
            outcomes[value] = error

    leader = threading.Thread(target=write, args=(1,))
    leader.start()
    assert first_in.wait(10)
    queued = [threading.Thread(target=write, args=(v,)) for v in range(2, 12)]
    for thread in queued:
        thread.start()
    deadline = time.monotonic() + 10
    while committer.queued() < 11:  # the leader's group and the ten queued
        assert time.monotonic() < deadline
        time.sleep(0.001)
    release.set()
    for thread in [leader, *queued]:
        thread.join(10)
    assert groups == [[1], list(range(2, 12))]
    for value in range(1, 12):
        if value % 5 == 0:
            assert isinstance(outcomes[value], ValueError)
        else:
            assert outcomes[value] == value * 10
    assert committer.stats().groups == 2


@pytest.mark.parametrize("in_flight", [1, 2, 3])
def test_groups_in_flight_never_exceed_the_limit_and_every_writer_is_answered(
    in_flight: int,
) -> None:
    """Many writers at once: at most ``in_flight`` groups run at a time, every
    writer gets its own outcome once, and writers share groups."""
    from journal._groupcommit import GroupCommitter

    running = 0
    most = 0
    lock = threading.Lock()

    def run_group(writes: list[Any]) -> list[tuple[Any, BaseException | None]]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.002)  # a server's round trip
        with lock:
            running -= 1
        return [(write(None), None) for write in writes]

    committer = GroupCommitter(run_group, chain=False, in_flight=in_flight)
    values = range(400)
    with ThreadPoolExecutor(64) as pool:
        answers = list(
            pool.map(lambda v: committer.submit(lambda _txn, v=v: v * 2), values)
        )
    assert answers == [v * 2 for v in values]
    assert most == in_flight  # the limit, and reached
    stats = committer.stats()
    assert stats.writes == 400
    assert stats.groups < 400
    assert committer.queued() == 0


def test_in_flight_must_be_at_least_one() -> None:
    from journal._groupcommit import GroupCommitter

    with pytest.raises(ValueError, match="in_flight must be at least 1"):
        GroupCommitter(lambda writes: [], in_flight=0)
