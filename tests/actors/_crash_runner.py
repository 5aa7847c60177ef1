"""Subprocess: spawn ``fulfil`` and hang in its second step until killed."""

from __future__ import annotations

import sys

from actors import ActorSystem
from tests.actors._workflows import fulfil

if __name__ == "__main__":
    system = ActorSystem.open(sys.argv[1])
    system.spawn(fulfil, "o-1", id="fulfil-o-1")
    system.ref("fulfil-o-1").result()  # never returns: ship blocks
