"""Regenerate the golden histories that ``test_golden.py`` replays.

Run by hand, from the repository root::

    .venv/bin/python tests/replay/make_golden.py

It imports every example that defines workflows (``examples/*.py`` as
``examples.<name>``, so their workflows are named ``examples.<name>:<function>``
and a ``Replayer`` resolves them by import), runs its ``main()`` in a fresh
temporary journal (the examples use a ManualClock, so this takes a second), and
writes the history of each run to ``tests/replay/golden/<example>.<run id>.json``,
replacing the files of that example.

Golden histories pin what the examples' code recorded. Regenerate them to add an
example or a run, never to make a failing replay test pass: that failure means the
examples' code changed in a way that runs recorded before cannot replay (guard
the change with ``ctx.patched``). Signal ids are random, so regenerating changes
them even when nothing else changed.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"


def main() -> None:
    sys.path.insert(0, str(REPO))  # examples/ imports as a namespace package
    from actors import WorkflowDefinition, export_histories, write_history

    GOLDEN.mkdir(exist_ok=True)
    for script in sorted((REPO / "examples").glob("*.py")):
        module = importlib.import_module(f"examples.{script.stem}")
        if not any(isinstance(v, WorkflowDefinition) for v in vars(module).values()):
            continue  # not a workflow example
        for old in GOLDEN.glob(f"{script.stem}.*.json"):
            old.unlink()
        with tempfile.TemporaryDirectory(prefix="chronik-golden-") as directory:
            journal = str(Path(directory) / "journal")
            with contextlib.redirect_stdout(io.StringIO()):
                module.main(journal)
            for history in export_histories(journal):
                target = GOLDEN / f"{script.stem}.{history.workflow_id}.json"
                write_history(target, history)
                print(f"wrote {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
