"""A process that holds a journal open and keeps writing runs to it.

``python -m tests.replay._holder PATH`` prints ``ready`` once its first run has
finished, then starts and finishes runs until a line (``stop``) comes on stdin;
then it closes the journal and prints ``stopped after N``.
"""

from __future__ import annotations

import sys
import threading

from actors import ActorSystem, ManualClock
from tests.replay import _workflows as flows


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
            ref = system.spawn(flows.two_steps, f"o-{runs}", id=f"held-{runs}")
            ref.result(timeout=5)
            if runs == 1:
                print("ready", flush=True)
    print(f"stopped after {runs}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
