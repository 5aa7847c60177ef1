"""A process that keeps writing to a journal while tests read it.

``python -m tests.cli._writer PATH`` runs ``ticker`` workflows one after the
other (each a loop of steps) and prints ``ready`` once the first has finished;
a line on stdin stops it, and it prints ``stopped after N runs``.
"""

from __future__ import annotations

import sys
import threading

from actors import ActorSystem, ManualClock
from tests.cli._flows import ticker


def main(path: str) -> None:
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    runs = 0
    with ActorSystem.open(path, clock=ManualClock(), idle_timeout=None) as system:
        while not stop.is_set():
            runs += 1
            system.spawn(ticker, 20, id=f"tick-{runs}").result(timeout=10)
            if runs == 1:
                print("ready", flush=True)
    print(f"stopped after {runs} runs", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
