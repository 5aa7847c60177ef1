"""``LazyEvent``: a ``threading.Event`` that costs a flag until someone waits.

An ``Event`` holds a ``Condition`` with a lock and a deque (about 1 KiB); ten
thousand idle actors each holding two of them hold 20 MB for nothing. This one
is a bool until the first ``wait``, which makes the real event.
"""

from __future__ import annotations

import threading

__all__ = ["LazyEvent"]

_making = threading.Lock()  # only ever held to make one object


class LazyEvent:
    __slots__ = ("_event", "_flag")

    def __init__(self) -> None:
        self._flag = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        self._flag = True
        event = self._event
        if event is not None:
            event.set()

    def clear(self) -> None:
        self._flag = False
        event = self._event
        if event is not None:
            event.clear()

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        with _making:
            if self._event is None:
                self._event = threading.Event()
        # Invariant from here: set() and clear() reach the event too. A set()
        # that ran before the event existed left the flag, read again here.
        if self._flag:
            self._event.set()
        return self._event.wait(timeout)
