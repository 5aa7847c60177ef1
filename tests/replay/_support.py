"""Helpers of the replay tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from actors import ActorSystem, History, UnknownRunError
from aggregates import RunEvent, WorkflowRun
from journal import JournalReader


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            msg = f"condition not met within {timeout} s"
            raise TimeoutError(msg)
        time.sleep(0.002)


def last_notification(path: str) -> int | None:
    """The journal's last notification id: any write moves it."""
    with JournalReader(path) as reader:
        return reader.max_notification_id()


def next_seq(system: ActorSystem, workflow_id: str) -> int:
    """The seq the run's next command will get; 0 while the run does not exist."""
    try:
        return system.history(workflow_id).next_seq
    except UnknownRunError:
        return 0


def history_of(run: WorkflowRun) -> History:
    """The history of a run made in memory: the events it has not saved."""
    events = [e for e in run.collect_events() if isinstance(e, RunEvent)]
    return History(run.id, tuple(events))
