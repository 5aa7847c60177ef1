"""Helper scripts run as child processes, read line by line with timeouts.

A child is a fresh interpreter (never a fork of one that has LMDB open), started
from the repository root so it imports ``journal`` and ``tests`` like the tests do.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

__all__ = ["REPO", "Child"]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TIMEOUT = 10.0


class Child:
    """``python -m <module> <args>``: stdin for commands, stdout for answers.

    Stdout is read on a thread into a queue, so every read can time out instead of
    hanging the test run when a child stalls.
    """

    def __init__(self, module: str, *args: str) -> None:
        self.name = f"{module} {' '.join(args)}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        # Invariant: the reader puts each stdout line, then None at end of file.
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._eof = False
        self._pump = threading.Thread(
            target=_pump, args=(self._stdout, self._lines), daemon=True
        )
        self._pump.start()

    @property
    def _stdout(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read_line(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The next complete stdout line, without its newline."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError(
                f"child {self.name!r} printed nothing for {timeout} s; "
                f"stderr:\n{self._stderr()}"
            ) from None
        if line is None or not line.endswith("\n"):
            self._eof = True
            code = self.process.wait(timeout=DEFAULT_TIMEOUT)
            raise AssertionError(
                f"child {self.name!r} exited with code {code} before answering; "
                f"stderr:\n{self._stderr()}"
            )
        return line[:-1]

    def expect(self, wanted: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        line = self.read_line(timeout)
        assert line == wanted, f"child {self.name!r} said {line!r}, expected {wanted!r}"

    def kill(self) -> None:
        """SIGKILL: no handler, no atexit, no flush runs in the child."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=DEFAULT_TIMEOUT)

    def lines_left(self) -> list[str]:
        """After the child has exited: every complete line it printed and we have not
        read (a line cut short by a kill is not an answer, and is dropped)."""
        assert self.process.poll() is not None, "call lines_left after the child exits"
        left: list[str] = []
        while not self._eof:
            line = self._lines.get(timeout=DEFAULT_TIMEOUT)
            if line is None:
                self._eof = True
            elif line.endswith("\n"):
                left.append(line[:-1])
        return left

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        return self.process.wait(timeout=timeout)

    def _stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return "<child still running>"
        return self.process.stderr.read()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self._pump.join(timeout=DEFAULT_TIMEOUT)  # it reads stdout until end of file
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


def _pump(stdout: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stdout:
        lines.put(line)
    lines.put(None)
