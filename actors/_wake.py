"""Waking one host: a named pipe per live host, written by whoever queued work.

A request for a run (a signal, a cancel, a run started by a client or by
another host) is made durable in the journal first; then the writer wakes the
host that drives the run: the owner of the run's partition, read from the
lease table. Each host listens on ``<journal>/chronik-hosts/<host id>.wake``, a
FIFO it creates on opening and removes on closing. A wake is one byte written
without blocking: if the host is gone (no reader: ``ENXIO``) or the pipe is full
(it is woken already), nothing more is needed, because the request is in the
journal and the host's slow poll, or the next owner's catch-up, finds it.

So an idle host reads the journal when woken and once per ``SLOW_POLL``, not
every 10 ms, and a request wakes the one host that acts on it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import stat
import time
from typing import Final

from actors._hostlock import HOSTS_DIR, host_file
from journal import Journal, Leases, partition_of

__all__ = [
    "SLOW_POLL",
    "WakeChannel",
    "wake_all",
    "wake_host",
    "wake_owner",
    "wake_run_owner",
]

SLOW_POLL: Final = 1.0  # seconds an idle host waits for a wake before it looks
_SUFFIX: Final = ".wake"


class WakeChannel:
    """The listening end of one host's pipe."""

    def __init__(self, path: str, read_fd: int, keep_fd: int) -> None:
        self._path = path
        # Invariant: both open until close(); keep_fd, a writer of our own,
        # keeps the reader from seeing end-of-file when the last waker closes.
        self._read_fd = read_fd
        self._keep_fd = keep_fd
        self._closed = False

    @classmethod
    def listen(cls, journal_path: str, host_id: str) -> WakeChannel:
        os.makedirs(os.path.join(journal_path, HOSTS_DIR), exist_ok=True)
        path = host_file(journal_path, host_id, _SUFFIX)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a dead host of the same id cannot exist: stale
        os.mkfifo(path, 0o600)
        read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        keep_fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        return cls(path, read_fd, keep_fd)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a wake; whether one came. Every
        wake pending is consumed: many wakes make one round of work."""
        if self._closed:
            return False
        try:
            ready, _, _ = select.select([self._read_fd], [], [], timeout)
        except (OSError, ValueError):  # closed meanwhile
            return False
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._read_fd, 4096):
                pass
        return True

    def wake(self) -> None:
        """Wake this channel's own waiter (to stop it promptly)."""
        _write_byte(self._keep_fd)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
        os.close(self._keep_fd)
        os.close(self._read_fd)


def wake_host(journal_path: str, host_id: str) -> bool:
    """Wake host ``host_id`` of the journal; False if it does not listen."""
    path = host_file(journal_path, host_id, _SUFFIX)
    return _wake_path(path)


def wake_all(journal_path: str) -> int:
    """Wake every host that listens on the journal; how many there were."""
    directory = os.path.join(journal_path, HOSTS_DIR)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    return sum(
        _wake_path(os.path.join(directory, name))
        for name in names
        if name.endswith(_SUFFIX)
    )


def wake_owner(journal_path: str, owner: str | None) -> None:
    """Wake the host that holds a run's partition (``owner``, from the lease
    table); with no live owner, every listening host (one takes it over)."""
    if owner is None or not wake_host(journal_path, owner):
        wake_all(journal_path)


def wake_run_owner(journal: Journal, run_id: str) -> None:
    """Wake the host that drives run ``run_id`` (after a request for it was
    made durable): one read of the lease table, one byte written."""
    owner = Leases(journal).owner_of(partition_of(run_id), time.time())
    wake_owner(journal.path, owner)


def _wake_path(path: str) -> bool:
    try:
        if not stat.S_ISFIFO(os.stat(path).st_mode):
            return False
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENXIO):  # gone, or no reader
            return False
        raise
    try:
        _write_byte(fd)
    finally:
        os.close(fd)
    return True


def _write_byte(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):  # full: a wake is pending
        os.write(fd, b"\x01")
