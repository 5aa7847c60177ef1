"""Ownership: which partitions of runs this host drives, by leases in the journal.

Every open system is a host with an id of its own (never reused: a restarted
process is a new host). A host may also have a name (``ActorSystem.open(...,
host_name=)``), kept across restarts as DBOS keeps an executor id: its id is then
``<name>#<incarnation>``, and a host takes the leases of an earlier life of its
own name at once, as a dead host's, instead of waiting for them to expire (names
must be unique among live hosts: two live hosts of one name take each other's
partitions, fenced, round after round).

A host takes a fair share of the partitions (all of them when it is alone), renews
its leases every third of their TTL, takes the partitions of hosts that stopped
renewing once their leases expire, and gives back what it holds above its share
when other hosts join, so that live hosts share the runs roughly
evenly. Each round is one ``tick``; what changed is returned for the system to act
on: start driving the runs of partitions gained, stop those of partitions lost (or
about to be given back, before they are: ``give_back``).

A partition's fencing token (``fence``) goes with every commit of its runs'
events: a host that lost a partition while it was frozen or cut off has its next
write refused (``journal.FencedOutError``), whatever it believes.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

import attrs

from actors._errors import ClockJumpError
from journal import PARTITIONS, Fence, Lease, Leases, LeaseSettingError

__all__ = ["Ownership", "Round", "check_host_name", "host_name_of", "new_host_id"]

_NAME_END = "#"
_MAX_NAME = 100


def new_host_id(host_name: str | None = None) -> str:
    """A host id no other process ever had: host name, pid and a random part;
    or, for a named host, its name and a random part (its incarnation)."""
    if host_name is not None:
        return f"{check_host_name(host_name)}{_NAME_END}{uuid.uuid4().hex[:12]}"
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def check_host_name(host_name: object) -> str:
    """``host_name`` if it can name a host; ``LeaseSettingError`` if not."""
    if (
        not isinstance(host_name, str)
        or not host_name
        or _NAME_END in host_name
        or len(host_name) > _MAX_NAME
    ):
        raise LeaseSettingError(
            "host_name",
            host_name,
            f"is not a host name: a non-empty str of at most {_MAX_NAME} "
            f"characters without {_NAME_END!r}",
        )
    return host_name


def host_name_of(host_id: str) -> str | None:
    """The name of a named host's id; None for an unnamed host."""
    name, end, _ = host_id.rpartition(_NAME_END)
    return name if end else None


@attrs.frozen
class Round:
    """What one ``tick`` changed: partitions taken, and partitions lost (taken
    by another host since the last round: stop their runs, do not commit)."""

    gained: frozenset[int] = frozenset()
    lost: frozenset[int] = frozenset()
    surplus: frozenset[int] = frozenset()  # held above the share: give back


class Ownership:
    """The leases of one host. ``clock`` is the hosts' shared wall clock."""

    def __init__(
        self,
        leases: Leases,
        host_id: str,
        ttl: float,
        clock: Callable[[], float],
        *,
        present: Callable[[str], bool] = lambda host_id: True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl <= 0:
            raise LeaseSettingError("ttl", ttl, "is not a number of seconds > 0")
        self._leases = leases
        self.host_id = host_id
        self.ttl = float(ttl)
        self._clock = clock
        # Whether a host still lives (its process holds its presence lock): a
        # dead host's leases are taken at once, a live one's when they expire.
        self._present = present
        self._monotonic = monotonic
        # The wall and monotonic clocks at the last round: a jump between them
        # skips a round (ClockJumpError) rather than misjudge expiries.
        self._last_clocks: tuple[float, float] | None = None
        self._lock = threading.Lock()
        # Invariant: the leases this host holds as of its last round.
        self._held: dict[int, Lease] = {}
        # Partitions a commit found taken since the last round: the round
        # reports them lost, so that every run of theirs is left, not only the
        # one whose commit was refused.
        self._forgotten: set[int] = set()

    @property
    def leases(self) -> Leases:
        return self._leases

    @property
    def held(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._held)

    def holds(self, partition: int) -> bool:
        return partition in self._held  # a dict read: atomic under the GIL

    def fence(self, partition: int) -> Fence | None:
        """The fence to commit ``partition``'s events with; None if not held."""
        with self._lock:
            lease = self._held.get(partition)
        return None if lease is None else Fence(partition, lease.token)

    def share(self, now: float, members: list[str] | None = None) -> int:
        """How many partitions this host should hold with the hosts alive now
        (``members``, if just read)."""
        if members is None:
            members = self._leases.members(now)
        hosts = {h for h in members if self._alive(h)}
        return math.ceil(PARTITIONS / len(hosts | {self.host_id}))

    def _alive(self, host_id: str) -> bool:
        """Whether ``host_id`` may still live: this host does; an earlier life
        of this host's name does not; others as their presence tells."""
        if host_id == self.host_id:
            return True
        name = host_name_of(self.host_id)
        if name is not None and host_name_of(host_id) == name:
            return False
        return self._present(host_id)

    def tick(self, busy: Callable[[int], bool] = lambda partition: False) -> Round:
        """One round: renew, take free or expired partitions up to the share,
        name the surplus. Never blocks on another host.

        ``busy``: whether a partition has a step in flight now; a busy partition
        is not given back this round (its new owner would run the step again),
        but at a later round, once it is quiet."""
        now = self._checked_now()
        renewed, members = self._leases.renew_round(self.host_id, self.ttl, now)
        with self._lock:
            lost = (frozenset(self._held) | self._forgotten) - frozenset(renewed)
            self._forgotten.clear()
            self._held = dict(renewed)
        wanted = self.share(now, members) - len(renewed)
        gained: frozenset[int] = frozenset()
        if wanted > 0:
            table = self._leases.read()
            live = {lease.owner for lease in table.values() if lease.held(now)}
            dead = frozenset(h for h in live if not self._alive(h))
            # A partition lost this round is not taken back in it: its runs'
            # actors are left first (a stale one must not commit with a new
            # token), and the next round may take it.
            free = [
                p
                for p in _preference(self.host_id)
                if p not in renewed
                and p not in lost
                and (p not in table or not table[p].held(now) or table[p].owner in dead)
            ]
            if free:
                taken = self._leases.acquire(
                    free[:wanted], self.host_id, self.ttl, now, dead=dead
                )
                with self._lock:
                    self._held.update(taken)
                gained = frozenset(taken)
        surplus: frozenset[int] = frozenset()
        if wanted < 0:
            ranked = sorted(renewed, key=_rank(self.host_id))[wanted:]
            surplus = frozenset(p for p in ranked if not busy(p))
        return Round(gained, lost, surplus)

    def _checked_now(self) -> float:
        """The wall clock now; ``ClockJumpError`` (nothing written) if it moved
        by more than a third of the TTL off the monotonic clock since the last
        round."""
        now, steady = self._clock(), self._monotonic()
        last, self._last_clocks = self._last_clocks, (now, steady)
        if last is not None:
            jump = (now - last[0]) - (steady - last[1])
            if abs(jump) > self.ttl / 3:
                raise ClockJumpError(self.host_id, jump)
        return now

    def give_back(self, partitions: frozenset[int]) -> None:
        """Release ``partitions`` (stop their runs first): another host may take
        them at once, with a larger token."""
        with self._lock:
            for partition in partitions:
                self._held.pop(partition, None)
        self._leases.release(partitions, self.host_id, self._clock())

    def forget(self, partition: int) -> None:
        """A commit found ``partition`` taken by another host: this host no
        longer claims it (the next round would find it lost anyway)."""
        with self._lock:
            if self._held.pop(partition, None) is not None:
                self._forgotten.add(partition)

    def check_lost(self) -> frozenset[int]:
        """Read (never write) which of the partitions this host claims another
        host holds now; stop claiming those. A crashed host's view, in tests."""
        table = self._leases.read()
        with self._lock:
            lost = frozenset(
                p
                for p, mine in self._held.items()
                if p in table and table[p].token != mine.token
            )
            for partition in lost:
                self._held.pop(partition, None)
            lost |= self._forgotten
            self._forgotten.clear()
        return lost

    def expire_all(self) -> None:
        """Let this host's leases run out now, keeping its own view of them
        (as a host that died would: for crash tests). Others take them at
        their next round; a write with their fences is then refused."""
        self._leases.leave(self.host_id, self._clock())

    def leave(self) -> None:
        """Release everything and stop being a member (the host is closing)."""
        with self._lock:
            self._held.clear()
        self._leases.leave(self.host_id, self._clock())


def _rank(host_id: str) -> Callable[[int], int]:
    order = {p: i for i, p in enumerate(_preference(host_id))}
    return order.__getitem__


def _preference(host_id: str) -> list[int]:
    """The partitions in the order this host prefers them: a rotation by a hash
    of its id, so hosts that start together reach for different ones."""
    start = uuid.uuid5(uuid.NAMESPACE_OID, host_id).int % PARTITIONS
    return [(start + i) % PARTITIONS for i in range(PARTITIONS)]
