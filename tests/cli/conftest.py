"""Journals for the CLI tests, and a way to run the installed ``chronik`` script.

The examples' journals are made once per session, by running the example
scripts as the README says (``python examples/order_saga.py PATH``), all at once
in parallel subprocesses. Tests only read them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import ActorSystem, ManualClock
from tests.cli import _flows as flows
from tests.replay._support import wait_for

REPO = Path(__file__).resolve().parents[2]
CHRONIK = Path(sys.executable).parent / "chronik"
EXAMPLES = ("order_saga", "approval", "payment", "onboarding")


def chronik(*args: str | Path, cwd: Path = REPO, timeout: float = 60) -> Result:
    """Run the installed console script; it never inherits a CHRONIK_JOURNAL."""
    if not CHRONIK.exists():
        pytest.fail(f"{CHRONIK} is missing: pip install -e '.[test]' installs it")
    env = {k: v for k, v in os.environ.items() if k != "CHRONIK_JOURNAL"}
    done = subprocess.run(
        [str(CHRONIK), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


class Result:
    """What one ``chronik`` invocation printed, and how it exited."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def json(self) -> Any:
        return json.loads(self.out)

    def error_line(self) -> str:
        """The one line a failing command writes to stderr."""
        lines = self.err.splitlines()
        assert len(lines) == 1, f"expected one error line, got {self.err!r}"
        assert lines[0].startswith("chronik: error: "), lines[0]
        return lines[0]

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture(scope="session")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each example's journal, made by running the example script."""
    root = tmp_path_factory.mktemp("examples")
    journals = {name: root / name for name in EXAMPLES}
    running = [
        subprocess.Popen(
            [sys.executable, str(REPO / "examples" / f"{name}.py"), str(path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, path in journals.items()
    ]
    for name, process in zip(EXAMPLES, running, strict=True):
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0, f"examples/{name}.py failed:\n{out}"
    return journals


@pytest.fixture(scope="session")
def order_saga(examples: dict[str, Path]) -> Path:
    return examples["order_saga"]


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal of ``tests.cli`` runs: ``order-1`` completed (10 events),
    ``order-2`` waiting for its approval, ``broken-1`` failed, ``fee-1``
    completed with the code that ``_flows_changed`` changes."""
    path = tmp_path_factory.mktemp("shop") / "journal"
    with ActorSystem.open(path, clock=ManualClock(), idle_timeout=None) as system:
        first = system.spawn(flows.order, "o-1", 120, id="order-1")
        wait_for(lambda: system.history("order-1").next_seq == 4)  # it waits
        first.send("approval", {"by": "ann"})
        first.result(timeout=10)
        waiting = system.spawn(flows.order, "o-2", 80, id="order-2")
        with pytest.raises(Exception, match="failed"):
            system.spawn(flows.broken, "no stock", id="broken-1").result(timeout=10)
        system.spawn(flows.fee, 5, id="fee-1").result(timeout=10)
        wait_for(lambda: system.history("order-2").next_seq == 4)  # it waits
        assert waiting.status() == "running"
    return path


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A process that keeps writing ``ticker`` runs to a journal until stopped."""
    path = tmp_path / "journal"
    log = tmp_path / "writer.log"
    with log.open("w") as stderr:  # a file: a full pipe would block the writer
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.cli._writer", str(path)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        ready = process.stdout.readline()
        assert ready == "ready\n", f"the writer did not start: {log.read_text()}"
        yield path, process
    finally:
        if process.poll() is None:
            process.stdin.write("stop\n")
            process.stdin.flush()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()  # it hung: fail, but leave no process behind
            process.wait()
            raise
