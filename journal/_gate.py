"""A shared/exclusive gate around the LMDB environment.

LMDB may only change the map size while this process has no transaction open, so
every transaction holds the gate shared and a resize takes it exclusively. A waiting
resize blocks new transactions, so it cannot starve.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Gate"]


class Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        # Invariant: _holders > 0 only while _exclusive is False.
        self._holders = 0
        self._exclusive = False
        self._waiting_exclusive = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.enter_shared()
        try:
            yield
        finally:
            self.exit_shared()

    def enter_shared(self) -> None:
        """``shared()`` without a generator, for the hot path: call
        ``exit_shared()`` in a ``finally``."""
        with self._cond:
            while self._exclusive or self._waiting_exclusive:
                self._cond.wait()
            self._holders += 1

    def exit_shared(self) -> None:
        with self._cond:
            self._holders -= 1
            if self._holders == 0 and self._waiting_exclusive:
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting_exclusive += 1
            try:
                while self._exclusive or self._holders:
                    self._cond.wait()
            finally:
                self._waiting_exclusive -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()
