"""Engine faults the state machine injects into a live ``ActorSystem``.

``CommitFaults`` wraps the system's ``save`` (the one commit of each mailbox
message): an armed fault makes the next commit of its run raise, before the
commit is durable or right after it is. ``tell_unknown`` hands a run's live
actor a message it has no handler for. Both are engine faults inside a workflow
actor: its supervisor replaces it, and the replacement replays the run.
"""

from __future__ import annotations

import threading
from typing import Any

import pykka

from actors import ActorSystem
from aggregates import WorkflowRun
from tests.crash import _stats

__all__ = ["ANY_RUN", "CommitFaults", "InjectedFault", "tell_unknown"]

ANY_RUN = "*"  # arms a fault for the next commit of whichever run's actor


class InjectedFault(Exception):
    """The engine fault a test injects into a commit."""


class UnknownMessage:
    """A message no workflow actor has a handler for."""


class CommitFaults:
    """Faults armed on one system's commits, each firing once.

    Only commits made by runs' actors fail; those of the test's own thread
    (``spawn``) never do, so a fault is always a fault inside an actor.
    """

    def __init__(self, system: ActorSystem, owner: threading.Thread) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        # Invariant: at most one armed fault per run id (or ANY_RUN); True
        # means it fires right after the commit is durable.
        self._armed: dict[str, bool] = {}
        self._save = system._host.commit
        system._host.commit = self._save_or_fail  # type: ignore[method-assign]

    def arm(self, run_id: str, after: bool) -> None:
        with self._lock:
            self._armed[run_id] = after

    def _save_or_fail(self, run: WorkflowRun, *children: WorkflowRun) -> None:
        after = None
        if threading.current_thread() is not self._owner:
            with self._lock:
                for key in (run.id, ANY_RUN):
                    if key in self._armed:
                        after = self._armed.pop(key)
                        break
        if after is None:
            self._save(run, *children)
            return
        if not after:
            _stats.count("fault: commits that raised before they were durable")
            msg = f"injected: the commit of {run.id!r} raised before it was durable"
            raise InjectedFault(msg)
        self._save(run, *children)
        _stats.count("fault: commits that raised right after they were durable")
        msg = f"injected: the commit of {run.id!r} raised after it was durable"
        raise InjectedFault(msg)


def tell_unknown(system: ActorSystem, run_id: str) -> bool:
    """Tell run ``run_id``'s live actor a message it cannot handle; False if
    the run has no live actor (passive, finished, or not started yet)."""
    handle: Any = system._router.find(run_id)
    actor = None if handle is None else handle.actor
    if actor is None:
        return False
    try:
        actor.tell(UnknownMessage())
    except pykka.ActorDeadError:
        return False  # being replaced already
    _stats.count("fault: unknown messages told to a live workflow actor")
    return True
