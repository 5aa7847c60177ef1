"""Leases with fencing tokens (issue 13's foundation): who owns a partition of
runs, until when, and a write by a stale owner refused in its own transaction."""

from __future__ import annotations

import threading
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from journal import (
    PARTITIONS,
    Fence,
    FencedOutError,
    Journal,
    Leases,
    LeaseSettingError,
    LMDBApplicationRecorder,
    partition_of,
)

TOPIC = "tests:Event"
TTL = 5.0


def _event(stream: str, version: int = 1) -> StoredEvent:
    return StoredEvent(stream, version, TOPIC, b"state")


def test_a_free_partition_is_taken_with_a_new_token_and_renewed_with_the_same(
    recorder: LMDBApplicationRecorder,
) -> None:
    leases = Leases(recorder.journal)

    taken = leases.acquire([3, 5], "host-a", TTL, now=100.0)
    renewed = leases.renew("host-a", TTL, now=103.0)

    assert {p: (lease.owner, lease.token) for p, lease in taken.items()} == {
        3: ("host-a", 1),
        5: ("host-a", 2),
    }
    assert {p: lease.token for p, lease in renewed.items()} == {3: 1, 5: 2}
    assert renewed[3].expires_at == 103.0 + TTL
    assert leases.read() == renewed
    assert leases.last_token() == 2


def test_a_held_partition_is_not_taken_until_its_lease_expires(
    recorder: LMDBApplicationRecorder,
) -> None:
    leases = Leases(recorder.journal)
    leases.acquire([7], "host-a", TTL, now=100.0)

    refused = leases.acquire([7], "host-b", TTL, now=104.9)
    taken = leases.acquire([7], "host-b", TTL, now=105.0)
    lost = leases.renew("host-a", TTL, now=105.1)

    assert refused == {}
    assert (taken[7].owner, taken[7].token) == ("host-b", 2)
    assert lost == {}  # host-a's renewal finds the partition gone
    assert leases.read()[7].owner == "host-b"


def test_a_released_partition_is_free_at_once_and_its_next_owner_fenced_anew(
    recorder: LMDBApplicationRecorder,
) -> None:
    leases = Leases(recorder.journal)
    leases.acquire([1, 2], "host-a", TTL, now=100.0)

    leases.release([1], "host-a", now=101.0)
    leases.release([2], "host-b", now=101.0)  # not host-b's: nothing happens
    taken = leases.acquire([1, 2], "host-b", TTL, now=101.0)

    assert list(taken) == [1]
    assert taken[1].token == 3  # larger than every token before, in any partition


def test_a_write_with_its_partitions_current_token_is_stored(
    recorder: LMDBApplicationRecorder,
) -> None:
    stream = "run-1"
    partition = partition_of(stream)
    lease = Leases(recorder.journal).acquire([partition], "host-a", TTL, 100.0)

    recorder.insert_events(
        [_event(stream)], fence=Fence(partition, lease[partition].token)
    )

    assert len(recorder.select_events(stream)) == 1


def test_a_stale_owners_write_is_refused_whole_and_names_both_tokens(
    recorder: LMDBApplicationRecorder,
) -> None:
    stream = "run-1"
    partition = partition_of(stream)
    leases = Leases(recorder.journal)
    old = leases.acquire([partition], "host-a", TTL, now=100.0)[partition]
    new = leases.acquire([partition], "host-b", TTL, now=200.0)[partition]
    before = recorder.max_notification_id()

    with pytest.raises(FencedOutError) as refused:
        recorder.insert_events(
            [_event(stream), _event(stream, 2)], fence=Fence(partition, old.token)
        )

    error = refused.value
    assert (error.held_token, error.current_token) == (old.token, new.token)
    assert error.current_owner == "host-b"
    assert "run-1" in str(error)
    assert "nothing of this batch was stored" in str(error)
    assert recorder.select_events(stream) == []
    assert recorder.max_notification_id() == before


def test_a_fence_on_a_partition_nobody_ever_held_is_refused(
    recorder: LMDBApplicationRecorder,
) -> None:
    with pytest.raises(FencedOutError, match="token is now 0"):
        recorder.insert_events([_event("run-1")], fence=Fence(partition_of("run-1"), 1))


def test_a_refused_write_does_not_fail_the_writes_committed_with_it(
    recorder: LMDBApplicationRecorder,
) -> None:
    """Writes of many threads share one transaction: the stale one fails alone."""
    stale_stream, partition = "run-stale", partition_of("run-stale")
    leases = Leases(recorder.journal)
    stale = leases.acquire([partition], "host-a", TTL, now=100.0)[partition]
    leases.acquire([partition], "host-b", TTL, now=200.0)
    outcomes: dict[str, object] = {}
    start = threading.Barrier(9)

    def write(name: str, fence: Fence | None) -> None:
        start.wait()
        try:
            recorder.insert_events([_event(name)], fence=fence)
        except FencedOutError as error:
            outcomes[name] = error
        else:
            outcomes[name] = "stored"

    threads = [
        threading.Thread(target=write, args=(f"run-free-{i}", None)) for i in range(8)
    ]
    threads.append(
        threading.Thread(
            target=write, args=(stale_stream, Fence(partition, stale.token))
        )
    )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert isinstance(outcomes.pop(stale_stream), FencedOutError)
    assert set(outcomes.values()) == {"stored"}
    assert recorder.select_events(stale_stream) == []


@pytest.mark.parametrize(
    ("terms", "setting"),
    [
        (([PARTITIONS], "host-a", TTL, 1.0), "partition"),
        (([-1], "host-a", TTL, 1.0), "partition"),
        (([0], "", TTL, 1.0), "owner"),
        (([0], "host-a", 0, 1.0), "ttl"),
        (([0], "host-a", -2.5, 1.0), "ttl"),
        (([0], "host-a", float("nan"), 1.0), "ttl"),
        (([0], "host-a", TTL, float("inf")), "now"),
    ],
)
def test_bad_lease_terms_are_refused_and_nothing_is_written(
    recorder: LMDBApplicationRecorder,
    terms: tuple[list[int], str, float, float],
    setting: str,
) -> None:
    leases = Leases(recorder.journal)

    with pytest.raises(LeaseSettingError, match=f"lease {setting}=") as refused:
        leases.acquire(*terms)

    assert "nothing was written" in str(refused.value)
    assert leases.read() == {}
    assert leases.last_token() == 0


def test_a_fence_must_cover_every_stream_it_writes(
    recorder: LMDBApplicationRecorder,
) -> None:
    partition = partition_of("run-1")
    lease = Leases(recorder.journal).acquire([partition], "host-a", TTL, 100.0)
    other = _stream_in((partition + 1) % PARTITIONS)
    recorder.insert_events([_event(other)])  # creating a stream needs no fence
    fence = Fence(partition, lease[partition].token)

    with pytest.raises(LeaseSettingError, match="does not cover stream"):
        recorder.insert_events([_event("run-1"), _event(other, 2)], fence=fence)
    assert recorder.select_events("run-1") == []
    recorder.insert_events([_event("run-1"), _event(_stream_in(7))], fence=fence)
    assert len(recorder.select_events("run-1")) == 1  # a new stream rides along


def test_partitions_are_stable_and_spread() -> None:
    ids = [f"order-{i}" for i in range(6400)]
    counts = [0] * PARTITIONS
    for run_id in ids:
        counts[partition_of(run_id)] += 1
    assert partition_of("order-42") == 30  # CRC-32: the same in every process
    assert min(counts) > 50  # 100 each, give or take
    assert max(counts) < 150


def _stream_in(partition: int) -> str:
    """A new stream id of ``partition``."""
    while partition_of(stream := f"s-{uuid4().hex[:8]}") != partition:
        pass
    return stream


# -- the lease table against a model ---------------------------------------------

HOSTS = ("host-a", "host-b", "host-c")
WATCHED = (0, 1, 2)  # partitions the machine plays with


class LeaseMachine(RuleBasedStateMachine):
    """Acquire, renew, release, let time pass, write with whatever fence a host
    last had: the table behaves as the model says, a partition has at most one
    live owner, tokens only grow, and a write is stored iff its fence is current."""

    fences = Bundle("fences")

    def __init__(self) -> None:
        super().__init__()
        self.journal: Journal | None = None

    @initialize()
    def open_journal(self) -> None:
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        self.journal = Journal.open(self.tmp.name + "/journal")
        self.leases = Leases(self.journal)
        self.recorder = LMDBApplicationRecorder(self.journal)
        self.now = 1000.0
        self.counter = 0
        # partition -> (owner, token, expires_at)
        self.model: dict[int, tuple[str, int, float]] = {}
        self.tokens_seen: dict[int, int] = {}
        self.versions: dict[str, int] = {}

    def teardown(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.tmp.cleanup()

    @rule(
        target=fences,
        host=st.sampled_from(HOSTS),
        partitions=st.sets(st.sampled_from(WATCHED), min_size=1),
        ttl=st.sampled_from([1.0, 5.0]),
    )
    def acquire(self, host: str, partitions: set[int], ttl: float) -> Fence:
        held = self.leases.acquire(partitions, host, ttl, self.now)
        expected = {}
        for partition in sorted(partitions):
            current = self.model.get(partition)
            if current is not None and current[0] != host and self.now < current[2]:
                continue
            token = current[1] if current is not None and current[0] == host else 0
            if not token:
                self.counter += 1
                token = self.counter
            self.model[partition] = (host, token, self.now + ttl)
            expected[partition] = token
        assert {p: lease.token for p, lease in held.items()} == expected
        partition = min(partitions)
        return Fence(partition, held[partition].token if partition in held else 0)

    @rule(host=st.sampled_from(HOSTS), ttl=st.sampled_from([1.0, 5.0]))
    def renew(self, host: str, ttl: float) -> None:
        renewed = self.leases.renew(host, ttl, self.now)
        expected = {}
        for partition, (owner, token, _) in list(self.model.items()):
            if owner == host:
                self.model[partition] = (owner, token, self.now + ttl)
                expected[partition] = token
        assert {p: lease.token for p, lease in renewed.items()} == expected

    @rule(
        host=st.sampled_from(HOSTS),
        partitions=st.sets(st.sampled_from(WATCHED), min_size=1),
    )
    def release(self, host: str, partitions: set[int]) -> None:
        self.leases.release(partitions, host, self.now)
        for partition in partitions:
            current = self.model.get(partition)
            if current is not None and current[0] == host:
                self.model[partition] = (host, current[1], min(self.now, current[2]))

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0, 6.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule(fence=fences)
    def write(self, fence: Fence) -> None:
        stream = _stream_in(fence.partition)
        current = self.model.get(fence.partition)
        accepted = current is not None and current[1] == fence.token
        refused: FencedOutError | None = None
        try:
            self.recorder.insert_events([_event(stream)], fence=fence)
        except FencedOutError as error:
            refused = error
        assert (refused is None) == accepted, refused
        assert len(self.recorder.select_events(stream)) == (1 if accepted else 0)

    @invariant()
    def the_table_is_the_model(self) -> None:
        if self.journal is None:
            return
        table = {
            p: (lease.owner, lease.token, lease.expires_at)
            for p, lease in self.leases.read().items()
        }
        assert table == self.model
        assert self.leases.last_token() == self.counter

    @invariant()
    def tokens_only_grow(self) -> None:
        for partition, (_, token, _) in self.model.items():
            assert token >= self.tokens_seen.get(partition, 0)
            self.tokens_seen[partition] = token


TestLeaseMachine = LeaseMachine.TestCase
TestLeaseMachine.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
