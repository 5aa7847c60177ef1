"""The host lock: how another process tells whether a system has a journal open.

``chronik signal`` and ``chronik cancel`` queue requests in the journal's
operator inbox (``actors._inbox``) and must know whether a live system will
deliver them. Every open ``ActorSystem`` holds ``<journal>/chronik-host.lock``
with a shared ``flock``; a probe that cannot take it exclusively knows a host is
live. The kernel drops a process's locks when it dies (even by SIGKILL), so a
dead host never looks live, and no stale pid file needs cleaning up.
"""

from __future__ import annotations

import fcntl
import os
from typing import Final

__all__ = ["HOST_LOCK_FILE", "HostLock", "host_is_live"]

HOST_LOCK_FILE: Final = "chronik-host.lock"


def _lock_path(journal_path: str) -> str:
    return os.path.join(journal_path, HOST_LOCK_FILE)


class HostLock:
    """A shared hold on a journal's host lock, until ``release``."""

    def __init__(self, fd: int) -> None:
        # Invariant: _fd is an open descriptor holding LOCK_SH, or None once released.
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, journal_path: str) -> HostLock:
        """Hold the lock of the journal at ``journal_path`` (which must exist).

        Blocking: a probe holds it exclusively only for an instant.
        """
        fd = os.open(_lock_path(journal_path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops its lock


def host_is_live(journal_path: str) -> bool:
    """Whether some process (this one included) has a system open on the journal."""
    try:
        fd = os.open(_lock_path(journal_path), os.O_RDONLY)
    except FileNotFoundError:
        return False  # no system has ever opened it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
