"""Simulating a crashed host inside one test process."""

from __future__ import annotations

from actors import ActorSystem


def as_crashed(system: ActorSystem) -> None:
    """Leave the hosts alive what a crash of ``system``'s process would: its
    presence lock is free, so they take its partitions at once; its threads go
    on, as a stale owner's would, and its writes are fenced out."""
    system.crash_presence()
