"""Group commit: many threads' writes merged into one LMDB transaction and one fsync.

Writers queue up; the writer at the head of the queue is the leader. It takes every
queued write (up to ``max_group``), runs them in one write transaction, commits once,
hands each writer its own outcome and wakes the next head, which leads the next
group. There is no committer thread: a lone writer commits on its own thread with no
hand-off, and under load the writers that arrive during one commit share the next.

A write is a function of the open transaction that checks everything first and only
then puts, so a write that raises has put nothing: its error is its own, and the
writes merged with it still commit.

Waking is cheap on purpose: each waiter blocks on a lock of its own (a bare lock is
lighter than an Event), and a finished group wakes as a chain (the leader wakes the
first member, each member wakes the next as it returns), so 64 threads do not all
fight for the GIL at once. Where a group takes long next to waking (a server's round
trip, PostgreSQL), ``chain=False`` wakes every member at once instead: a member late
in the group no longer waits for each one before it to run (W2's starts on
PostgreSQL: 4-5% more steps/s; LMDB's commits, far shorter, keep the chain).

A server's commit is mostly waiting (PostgreSQL: the round trip, the server's
work, its WAL flush), so ``in_flight=2`` lets a second group be sent while one is
committing, on another connection: the server orders them (PostgreSQL's table
lock), and a writer arriving while one group commits does not wait for its
whole round trip before its own begins (W2's starts on PostgreSQL: about 9% more
steps/s; with 0.5 ms commits that only wait, 15%). Writers arriving while every
slot is taken queue as before, and the next group takes them all.

The committer counts what it committed (``stats()``): groups, writes, the largest
group and a histogram of group sizes, updated under the lock it already takes.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import attrs
from eventsourcing.persistence import IntegrityError

__all__ = ["BUCKETS", "CommitStats", "GroupCommitter", "Write"]

Write = Callable[[Any], Any]
"""A write: given the open write transaction, check, then put; return the outcome."""

Outcome = tuple[Any, BaseException | None]

BUCKETS: Final = ("1", "2-3", "4-7", "8-15", "16+")
"""The histogram's buckets: writes per committed group."""


@attrs.frozen
class CommitStats:
    """How the writes of one journal in this process were grouped into commits.

    ``groups`` is the number of committed write transactions, ``writes`` the
    writes they carried (a write's own ``IntegrityError`` still rode in its
    group's commit); ``histogram[i]`` counts groups whose size is in
    ``BUCKETS[i]``, so ``sum(histogram) == groups``. ``failed_groups`` counts
    transactions that failed whole (nothing of them was written).
    """

    groups: int = 0
    writes: int = 0
    max_group: int = 0
    histogram: tuple[int, ...] = (0,) * len(BUCKETS)
    failed_groups: int = 0

    @property
    def mean_group(self) -> float:
        return self.writes / self.groups if self.groups else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "writes": self.writes,
            "max_group": self.max_group,
            "mean_group": round(self.mean_group, 3),
            "histogram": dict(zip(BUCKETS, self.histogram, strict=True)),
            "failed_groups": self.failed_groups,
        }


class _Pending:
    __slots__ = ("called", "done", "error", "next_in_group", "result", "wake", "write")

    def __init__(self, write: Write) -> None:
        self.write = write
        self.wake = threading.Lock()
        self.wake.acquire()  # released once: when done, or when it is to lead
        self.done = False
        self.called = False  # to lead the next group (it holds a slot)
        self.result: Any = None
        self.error: BaseException | None = None
        self.next_in_group: _Pending | None = None

    def outcome(self) -> Any:
        if self.next_in_group is not None:
            self.next_in_group.wake.release()
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommitter:
    def __init__(
        self,
        run_group: Callable[[list[Write]], list[Outcome]],
        max_group: int = 1024,
        *,
        chain: bool = True,
        in_flight: int = 1,
    ) -> None:
        """``run_group`` runs writes in one committed transaction and returns each
        write's (result, error), or raises if the transaction as a whole failed.
        ``chain``: wake a group's members one after another; ``in_flight``: how
        many groups may commit at once (``run_group`` then runs in as many
        threads at once; see the module)."""
        self._run_group = run_group
        self._max_group = max_group
        self._chain = chain
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, not {in_flight!r}")
        self._in_flight = in_flight
        self._lock = threading.Lock()
        # Invariants: _slots (at most _in_flight) counts the groups being
        # committed and the writer called to lead the next, if any; that writer
        # is _queue[0], and takes every writer queued once it leads. Otherwise
        # the queue's head waits for a slot (all are held).
        self._slots = 0
        self._queue: deque[_Pending] = deque()
        self._committing = 0  # groups inside run_group now
        # Counted under _lock: committed groups, their writes, the largest.
        self._groups = self._writes = self._largest = self._failed = 0
        self._histogram = [0] * len(BUCKETS)

    def stats(self) -> CommitStats:
        """What this committer has committed so far (a consistent snapshot)."""
        with self._lock:
            return CommitStats(
                self._groups,
                self._writes,
                self._largest,
                tuple(self._histogram),
                self._failed,
            )

    def queued(self) -> int:
        """Writers waiting for a group, plus one for each group committing."""
        with self._lock:
            return len(self._queue) + self._committing

    def submit(self, write: Write) -> Any:
        me = _Pending(write)
        with self._lock:
            self._queue.append(me)
            leading = len(self._queue) == 1 and self._slots < self._in_flight
            if leading:
                self._slots += 1
                me.called = True
        if not leading:
            me.wake.acquire()
            if me.done:
                return me.outcome()
        self._lead()
        return me.outcome()

    def _lead(self) -> None:
        with self._lock:
            size = min(len(self._queue), self._max_group)
            group = [self._queue.popleft() for _ in range(size)]
            self._committing += 1
        committed = True
        try:
            outcomes = self._run_group([p.write for p in group])
        except BaseException as failure:  # the whole transaction failed: all share it
            outcomes = [(None, failure)] * len(group)
            committed = False
        for pending, (result, error) in zip(group, outcomes, strict=True):
            pending.result, pending.error = result, error
            pending.done = True
        if self._chain:
            for earlier, later in itertools.pairwise(group[1:]):
                earlier.next_in_group = later
        with self._lock:
            self._count(len(group), committed)
            self._committing -= 1
            successor = self._queue[0] if self._queue else None
            if successor is None or successor.called:  # it takes the queue
                successor = None
                self._slots -= 1
            else:  # this group's slot goes to it
                successor.called = True
        if successor is not None:
            successor.wake.release()
        if self._chain and len(group) > 1:
            group[1].wake.release()
        elif not self._chain:
            for member in group[1:]:
                member.wake.release()

    def _count(self, size: int, committed: bool) -> None:
        """Count one group; hold the lock."""
        if not committed:
            self._failed += 1
            return
        self._groups += 1
        self._writes += size
        self._largest = max(self._largest, size)
        self._histogram[min(size.bit_length(), len(BUCKETS)) - 1] += 1


def run_checked(write: Write, context: Any) -> Outcome:
    """Run one write inside a group; a conflict is that write's own outcome."""
    try:
        return write(context), None
    except IntegrityError as error:
        return None, error
