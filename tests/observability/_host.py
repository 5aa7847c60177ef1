"""A process hosting a system on a journal until its stdin closes:
``python -m tests.observability._host PATH`` (run from the repository root)."""

from __future__ import annotations

import sys

from actors import ActorSystem
from tests.observability._workflows import patient


def main(path: str) -> None:
    with ActorSystem.open(path) as system:
        system.spawn(patient, id="obs-hosted")
        print("ready", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1])
