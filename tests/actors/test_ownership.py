"""Ownership rounds (issue 13): hosts share the partitions through leases, take a
dead host's share once its leases expire, and a frozen host that comes back finds
its partitions lost and its writes fenced out."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

from actors import ClockJumpError
from actors._hostlock import HostPresence, host_is_present
from actors._ownership import Ownership, new_host_id
from journal import (
    PARTITIONS,
    FencedOutError,
    Journal,
    Leases,
    LeaseSettingError,
    LMDBApplicationRecorder,
    partition_of,
)

TTL = 3.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal.open(str(tmp_path / "journal"))
    yield opened
    opened.close()


def host(journal: Journal, clock: Clock, name: str) -> Ownership:
    # The fake clock stands for both clocks: its moves are time passing.
    return Ownership(Leases(journal), name, TTL, clock, monotonic=clock)


def settle(hosts: list[Ownership], rounds: int = 4) -> None:
    """Let every host tick a few times, giving back its surplus at once."""
    for _ in range(rounds):
        for each in hosts:
            round_ = each.tick()
            if round_.surplus:
                each.give_back(round_.surplus)


def test_a_host_alone_takes_every_partition(journal: Journal) -> None:
    clock = Clock()
    alone = host(journal, clock, "a")

    first = alone.tick()

    assert first.gained == frozenset(range(PARTITIONS))
    assert alone.held == first.gained
    tokens = {alone.fence(p).token for p in range(PARTITIONS)}  # type: ignore[union-attr]
    assert len(tokens) == PARTITIONS  # one token per change of owner
    clock.now += 1
    assert alone.tick().gained == frozenset()  # a renewal keeps everything
    assert alone.fence(5) == alone.fence(5)


@pytest.mark.parametrize("count", [2, 3, 5])
def test_hosts_that_join_share_the_partitions_roughly_evenly(
    journal: Journal, count: int
) -> None:
    clock = Clock()
    hosts = [host(journal, clock, f"h{i}") for i in range(count)]
    hosts[0].tick()

    settle(hosts)

    held = [h.held for h in hosts]
    share = -(-PARTITIONS // count)
    assert all(len(h) <= share for h in held), [len(h) for h in held]
    assert all(len(h) >= PARTITIONS // count - 2 for h in held), [len(h) for h in held]
    assert frozenset().union(*held) == frozenset(range(PARTITIONS))
    assert sum(len(h) for h in held) == PARTITIONS  # never two owners


def test_a_dead_hosts_partitions_are_taken_once_its_leases_expire(
    journal: Journal,
) -> None:
    clock = Clock()
    a, b = host(journal, clock, "a"), host(journal, clock, "b")
    a.tick()
    settle([a, b])
    dead = b.held
    old_fences = {p: b.fence(p) for p in dead}

    clock.now += TTL / 3
    assert a.tick().gained == frozenset()  # b's leases still hold
    clock.now += TTL
    taken = a.tick()

    assert taken.gained == dead
    assert a.held == frozenset(range(PARTITIONS))
    for partition in dead:
        new = a.fence(partition)
        assert new is not None
        assert new.token > old_fences[partition].token  # type: ignore[union-attr]


def test_a_frozen_host_that_comes_back_has_lost_its_partitions_and_is_fenced_out(
    journal: Journal,
) -> None:
    clock = Clock()
    a, b = host(journal, clock, "a"), host(journal, clock, "b")
    a.tick()
    settle([a, b])
    frozen = b.held
    partition = min(frozen)
    stale = b.fence(partition)
    assert stale is not None
    clock.now += TTL + 1
    a.tick()  # takes b's partitions

    back = b.tick()

    assert back.lost == frozen
    assert b.fence(partition) is None
    recorder = LMDBApplicationRecorder(journal)
    stream = next(
        f"run-{i}" for i in range(10_000) if partition_of(f"run-{i}") == partition
    )
    with pytest.raises(FencedOutError):
        recorder.insert_events([StoredEvent(stream, 1, "t", b"")], fence=stale)
    assert recorder.select_events(stream) == []


def test_a_partition_a_commit_found_taken_is_reported_lost_at_the_next_round(
    journal: Journal,
) -> None:
    """A fenced commit makes the host forget the partition at once; the next
    round still reports it lost, so that every run of it is left, not only the
    refused one's, and does not take it back (a later round may)."""
    clock = Clock()
    a, b = host(journal, clock, "a"), host(journal, clock, "b")
    a.tick()
    settle([a, b])
    partition = min(b.held)
    clock.now += TTL + 1
    a.tick()  # takes b's partitions while b is frozen

    b.forget(partition)  # b's commit was refused
    assert b.fence(partition) is None
    back = b.tick()

    assert partition in back.lost
    assert partition not in back.gained
    assert partition not in b.tick().lost  # reported once


def test_named_hosts_take_an_earlier_life_s_leases_at_once(journal: Journal) -> None:
    clock = Clock()
    first = Ownership(Leases(journal), new_host_id("w"), TTL, clock, monotonic=clock)
    first.tick()
    assert len(first.held) == 64
    other = Ownership(Leases(journal), new_host_id("v"), TTL, clock, monotonic=clock)
    assert other.tick().gained == frozenset()  # another name waits for the TTL
    again = Ownership(Leases(journal), new_host_id("w"), TTL, clock, monotonic=clock)
    assert len(again.tick().gained) == 32  # its share beside the other, at once
    assert first.tick().lost  # the earlier life finds them gone


def test_a_host_that_leaves_frees_its_partitions_at_once(journal: Journal) -> None:
    clock = Clock()
    a, b = host(journal, clock, "a"), host(journal, clock, "b")
    a.tick()
    settle([a, b])
    left = b.held

    b.leave()
    gained = a.tick().gained

    assert gained == left
    assert Leases(journal).members(clock.now) == ["a"]


def test_host_ids_are_never_reused() -> None:
    ids = {new_host_id() for _ in range(100)}
    assert len(ids) == 100


@pytest.mark.parametrize("ttl", [0, -1.0, float("nan"), float("inf"), "3"])
def test_a_bad_ttl_is_a_clear_error(journal: Journal, ttl: object) -> None:
    with pytest.raises(LeaseSettingError, match="lease ttl="):
        Ownership(Leases(journal), "a", ttl, Clock())  # type: ignore[arg-type]
    assert Leases(journal).read() == {}


def test_a_host_known_dead_loses_its_partitions_at_once(journal: Journal) -> None:
    """A host whose process is gone (its presence lock free) needs no TTL wait."""
    clock = Clock()
    alive = {"a", "b"}
    a, b = (
        Ownership(
            Leases(journal),
            name,
            TTL,
            clock,
            present=alive.__contains__,
            monotonic=clock,
        )
        for name in ("a", "b")
    )
    a.tick()
    settle([a, b])
    gone = b.held
    stale = {p: b.fence(p) for p in gone}

    alive.discard("b")  # b's process died: no clock advance at all
    taken = a.tick()

    assert taken.gained == gone
    for partition in gone:
        assert a.fence(partition).token > stale[partition].token  # type: ignore[union-attr]


def test_a_presence_lock_says_whether_its_process_lives(tmp_path: Path) -> None:
    journal_path = str(tmp_path)
    held = HostPresence.hold(journal_path, "host:1:abc")
    assert host_is_present(journal_path, "host:1:abc")
    assert not host_is_present(journal_path, "host:2:def")  # never existed
    held.release()
    assert not host_is_present(journal_path, "host:1:abc")

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from actors._hostlock import HostPresence; "
            "HostPresence.hold(sys.argv[1], 'killed:9:x'); print('held', flush=True); "
            "time.sleep(60)",
            journal_path,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        assert host_is_present(journal_path, "killed:9:x")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert not host_is_present(journal_path, "killed:9:x")  # the kernel let go


def test_a_host_whose_wall_clock_jumps_skips_the_round_and_writes_nothing(
    journal: Journal,
) -> None:
    wall, steady = Clock(), Clock()
    a = Ownership(Leases(journal), "a", TTL, wall, monotonic=steady)
    assert len(a.tick().gained) == PARTITIONS
    before = Leases(journal).read()
    wall.now += 3600.0  # an hour ahead, while one second passed
    steady.now += 1.0
    with pytest.raises(ClockJumpError, match=r"jumped by \+3599\.000 s") as jumped:
        a.tick()
    assert "nothing was written" in str(jumped.value)
    assert Leases(journal).read() == before
    assert a.held == frozenset(range(PARTITIONS))  # still its own
    wall.now += 1.0  # from the clock as it is now, rounds go on
    steady.now += 1.0
    assert a.tick().lost == frozenset()
    wall.now -= 60.0  # backwards as well
    with pytest.raises(ClockJumpError, match=r"-60\.000 s"):
        a.tick()
