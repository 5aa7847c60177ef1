"""Subprocess of the contract tests: ``-m tests.actors._contract_runner MODE PATH``.

``signals``: spawn ``approval``, send both of its signals, and log each
acknowledgement to CHRONIK_COUNT_FILE; ``ship`` then hangs until the process is killed.
``owner``: spawn ``approval`` and send its approval; when ``ship`` returns (once the
test creates CHRONIK_BLOCK_FILE) print how this owner's run ended, as JSON.
``evolving``: spawn ``evolving``, whose ``ship`` hangs until the process is killed.
"""

from __future__ import annotations

import json
import os
import sys

from actors import ActorSystem
from tests.actors._contract_workflows import approval, evolving


def _acknowledged(what: str) -> None:
    with open(os.environ["CHRONIK_COUNT_FILE"], "a", encoding="utf-8") as file:
        file.write(f"acknowledged {what}\n")
        file.flush()
        os.fsync(file.fileno())


def _signals(system: ActorSystem) -> None:
    ref = system.spawn(approval, "o-1", id="approval-o-1")
    ref.send("approve", "yes", signal_id="approve-1")
    _acknowledged("approve")
    ref.send("note", "fragile", signal_id="note-1")
    _acknowledged("note")
    ref.result()  # never returns: ship hangs


def _owner(system: ActorSystem) -> None:
    ref = system.spawn(approval, "o-2", id="approval-o-2")
    ref.send("approve", "yes", signal_id="approve-2")
    try:
        ref.result(timeout=30)
    except Exception as error:
        cause = error.__cause__
        print(
            json.dumps(
                {
                    "error": type(error).__name__,
                    "message": str(error),
                    "cause": type(cause).__name__,
                    "version": getattr(cause, "originator_version", None),
                }
            ),
            flush=True,
        )
    else:
        print(json.dumps({"error": None}), flush=True)


def _evolving(system: ActorSystem) -> None:
    system.spawn(evolving, "o-3", id="evolving-o-3").result()  # ship hangs


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    opened = ActorSystem.open(path, max_run_restarts=0)  # the break-off path
    {"signals": _signals, "owner": _owner, "evolving": _evolving}[mode](opened)
    opened.close()
