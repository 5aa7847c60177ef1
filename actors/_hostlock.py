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
import time
from typing import Final

__all__ = [
    "HOSTS_DIR",
    "HOST_LOCK_FILE",
    "HostLock",
    "HostPresence",
    "host_file",
    "host_is_live",
    "host_is_present",
    "sweep_dead_hosts",
]

HOST_LOCK_FILE: Final = "chronik-host.lock"
HOSTS_DIR: Final = "chronik-hosts"  # one lock file per open system: its presence


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
    return _held(_lock_path(journal_path))  # False: no system ever opened it


def _held(path: str) -> bool:
    """Whether some process holds a lock on the file at ``path`` (one that
    does not exist is held by nobody)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class HostPresence:
    """One host's own lock, ``<journal>/chronik-hosts/<host id>.lock``, held
    exclusively while the host lives: another process tells a dead host (its
    leases may be taken at once) from a live one (wait for them to expire) by
    trying it. LMDB journals live on a local file system, so every host of one
    journal shares this kernel's locks."""

    def __init__(self, path: str, fd: int) -> None:
        self._path = path
        self._fd: int | None = fd

    @classmethod
    def hold(cls, journal_path: str, host_id: str) -> HostPresence:
        """Create and lock this host's file. A sweeper (``sweep_dead_hosts``)
        may lock or remove it between the two steps, taking it for a dead
        host's: then this tries again, until it holds the file its path names."""
        directory = os.path.join(journal_path, HOSTS_DIR)
        os.makedirs(directory, exist_ok=True)
        path = _presence_path(journal_path, host_id)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a sweeper holds it for an instant
                os.close(fd)
                time.sleep(0.001)
                continue
            except BaseException:
                os.close(fd)
                raise
            if _same_file(path, fd):
                return cls(path, fd)
            os.close(fd)  # swept before it was locked: make it again

    def ensure(self) -> bool:
        """Hold the file the path names again if it was removed or replaced
        meanwhile (by hand, or by a sweeper that raced this host's start):
        otherwise other hosts would take this live host for a dead one. Whether
        it had to; a released presence stays released."""
        fd = self._fd
        if fd is None or _same_file(self._path, fd):
            return False
        again = HostPresence.hold(
            os.path.dirname(os.path.dirname(self._path)), self._host_name()
        )
        self._fd, again._fd = again._fd, None
        os.close(fd)
        return True

    def _host_name(self) -> str:
        return os.path.basename(self._path).removesuffix(".lock")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with _suppress_missing():
                os.unlink(self._path)
            os.close(fd)


def sweep_dead_hosts(journal_path: str) -> int:
    """Remove the files of hosts that died without closing (a presence file
    nobody holds, and its wake pipe); how many hosts were swept. Safe beside
    live hosts: a file is removed only while this holds its lock."""
    directory = os.path.join(journal_path, HOSTS_DIR)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    swept = 0
    for name in names:
        if not name.endswith(".lock"):
            continue
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live host's
            if not _same_file(path, fd):
                continue  # removed and made again meanwhile
            with _suppress_missing():
                os.unlink(path)
            with _suppress_missing():
                os.unlink(path.removesuffix(".lock") + ".wake")
            swept += 1
        finally:
            os.close(fd)
    return swept


def _same_file(path: str, fd: int) -> bool:
    """Whether ``path`` still names the file open at ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def host_is_present(journal_path: str, host_id: str) -> bool:
    """Whether host ``host_id`` still lives (holds its presence lock; no lock
    file: it left, or never got as far as taking a lease)."""
    return _held(_presence_path(journal_path, host_id))


def _presence_path(journal_path: str, host_id: str) -> str:
    return host_file(journal_path, host_id, ".lock")


def host_file(journal_path: str, host_id: str, suffix: str) -> str:
    """The path of one of host ``host_id``'s files (its lock, its wake pipe)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in host_id)
    return os.path.join(journal_path, HOSTS_DIR, f"{safe}{suffix}")


class _suppress_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: object, tb: object) -> bool:
        return isinstance(error, FileNotFoundError)
