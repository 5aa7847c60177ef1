"""SIGKILL trials: worker processes run a workload of the model workflows on
one journal and are killed at random moments (one to three workers a trial,
one after the other, sometimes two at once); the journal they leave is
checked, opened again in this process, and every run must end as the
fault-free model says.

Each trial has a fresh journal, on each backend: a directory (LMDB) or a schema
of its own (PostgreSQL). The seed (printed, and in every failure; set
CHRONIK_CRASH_SEED to repeat a run) fixes each trial's workload, its workers and
how long after each starts opening the journal it is killed, not where in a
commit the kill lands. 3 trials by default, 50 in the long run (CHRONIK_LONG=1
or ``-m slow``).

On PostgreSQL nothing tells a killed host but its leases running out: workers
and the final reopen use a 1 s lease TTL, each worker after the first is
killed a TTL later than its draw says (by then it has taken the dead one's
runs over, as on LMDB it does at once), and the final check waits for the
takeover as long as it waits for results.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from actors import ActorSystem, WorkflowFailedError
from actors._backend import backend_for
from actors._system import RunsApp
from actors.testing._audit import requested_signals
from actors.testing._journals import fresh_journal
from aggregates import RunFinishedError, StepFailed
from journal import Journal, JournalPathError, PostgresLocation, parse_location
from tests.crash import _stats
from tests.crash._checks import (
    Runs,
    effects_problems,
    ending_of,
    ending_problems,
    journal_problems,
    read_runs,
)
from tests.crash._workflows import EFFECTS_FILE, WORKFLOWS, Effect
from tests.crash._workload import PlannedRun, model_of, workload
from tests.journal._subprocess import Child

LONG = bool(os.environ.get("CHRONIK_LONG"))
MAX_DELAY = 0.3  # seconds after "opening"; a workload takes 0.1-0.4 s
OPENING = 0.015  # about how long opening the journal takes
RESULT_TIMEOUT = 30.0  # a run's end, after the takeover on PostgreSQL


@attrs.frozen
class Hosts:
    """How a trial's processes hold the journal, by backend."""

    lease_ttl: float
    takeover: float  # added to the kill delay of each worker after the first

    @classmethod
    def of(cls, journal: str) -> Hosts:
        if _on_postgres(journal):
            return cls(lease_ttl=1.0, takeover=1.0)  # its leases must run out
        return cls(lease_ttl=5.0, takeover=0.0)  # a dead host's flock goes at once

    def describe(self) -> str:
        if not self.takeover:
            return "LMDB"
        return (
            f"PostgreSQL, lease TTL {self.lease_ttl} s, each worker after the "
            f"first killed {self.takeover} s later"
        )


def _on_postgres(journal: str) -> bool:
    return isinstance(parse_location(journal), PostgresLocation)


@attrs.frozen
class Life:
    """One worker process of a trial: SIGKILLed ``delay`` s after it began
    opening the journal; if ``overlap``, started while the previous worker
    still ran (which is killed ``delay / 2`` s later: two processes own the
    same runs for a while)."""

    delay: float
    overlap: bool

    def describe(self) -> str:
        started = "started before the last was killed, " if self.overlap else ""
        return f"{started}SIGKILL after {self.delay:.3f} s"


def _lives(rng: random.Random) -> list[Life]:
    count = rng.choice([1, 1, 2, 3])
    return [
        Life(_delay(rng), number > 0 and rng.random() < 0.3) for number in range(count)
    ]


def _delay(rng: random.Random) -> float:
    """Mostly while the workload runs; sometimes while the journal opens."""
    if rng.random() < 0.15:
        return rng.uniform(0.0, OPENING)
    return rng.uniform(0.0, MAX_DELAY)


@pytest.mark.multiprocess
@pytest.mark.parametrize(
    "trials",
    [
        pytest.param(
            3,
            id="default",
            marks=pytest.mark.skipif(LONG, reason="CHRONIK_LONG=1 runs the long one"),
        ),
        pytest.param(50, id="long", marks=pytest.mark.slow),
    ],
)
def test_workers_killed_at_random_moments_lose_no_acknowledged_signal_record_each_step_once_and_their_runs_end_as_the_model_says(  # noqa: E501
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trials: int,
    journal_location: str,
) -> None:
    seed = int(os.environ.get("CHRONIK_CRASH_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    hosts = Hosts.of(journal_location)
    print(f"CHRONIK_CRASH_SEED={seed}")
    for trial in range(trials):
        workload_seed = rng.randrange(1 << 32)
        lives = _lives(rng)
        context = (
            f"trial {trial} (CHRONIK_CRASH_SEED={seed}, {hosts.describe()}): "
            f"workload seed {workload_seed}; workers: "
            + "; ".join(life.describe() for life in lives)
        )
        print(context)
        directory = tmp_path / f"trial-{trial}"
        directory.mkdir()
        with _journal_of(journal_location, directory) as path:
            _trial(
                Trial(path, directory, hosts, workload_seed, lives, context),
                monkeypatch,
            )
        _stats.count("kill: trials")
        if hosts.takeover:
            _stats.count("kill: trials on PostgreSQL")


@contextlib.contextmanager
def _journal_of(location: str, directory: Path) -> Iterator[str]:
    """A trial's fresh journal: in its directory on LMDB (left there to look
    at after a failure); a schema of its own on PostgreSQL (dropped after)."""
    if not _on_postgres(location):
        yield str(directory / "journal")
        return
    with fresh_journal(location) as url:
        yield url


@attrs.frozen
class Trial:
    """One trial: its journal, the directory of its files (the workers'
    acknowledged signals and step executions), its workload and workers."""

    journal: str
    directory: Path
    hosts: Hosts
    seed: int  # of the workload
    lives: list[Life]
    context: str  # what a failure says first


def _trial(trial: Trial, monkeypatch: pytest.MonkeyPatch) -> None:
    path, context, lives = trial.journal, trial.context, trial.lives
    acks, before, after = (
        trial.directory / n for n in ("acks", "effects-1", "effects-2")
    )
    runs = workload(trial.seed).runs
    said = _live_and_die(trial, before, acks)
    if _left_unopenable(path, said):
        return
    acked = _acknowledged(acks)

    # The journal as the kills left it: every acknowledged signal is there
    # (no worker sent again what one before it saw acknowledged): in its run's
    # history, or in the operator inbox (sent to a run another host held, as
    # on PostgreSQL while a killed worker's leases hold; the final check below
    # finds it in the history once a host took it).
    left = read_runs(path)
    requested = requested_signals(path)
    in_runs = {
        run: [i for i in ids if i not in requested] for run, ids in acked.items()
    }
    problems = journal_problems(left, in_runs)
    assert not problems, f"{context}: after the kills:\n" + "\n".join(problems)
    _count_kills(said, lives, runs, left, acked)

    # Open it again (as a client would: spawn by id, send every signal again
    # with its id) and let every run end.
    model = model_of(runs)
    monkeypatch.setenv(EFFECTS_FILE, str(after))
    try:
        _finish(path, trial.hosts, runs, list(model.runs), context)
    finally:
        monkeypatch.delenv(EFFECTS_FILE)

    final = read_runs(path)
    effects = _effects(before) + _effects(after)
    problems = journal_problems(final, acked)
    problems += effects_problems(final, effects)
    for run_id, run in model.runs.items():
        events = final.get(run_id, ())
        if ending_of(events) is None:
            problems.append(f"run {run_id!r} never ended; the model: {run.ending}")
        problems += ending_problems(run_id, events, run)
    assert not problems, f"{context}:\n" + "\n".join(problems)
    _count_effects(_effects(before), _effects(after), final)


def _live_and_die(trial: Trial, effects: Path, acks: Path) -> list[list[str]]:
    """Run a worker per life and SIGKILL each; every line each printed."""
    hosts = trial.hosts
    said: list[list[str]] = []
    with contextlib.ExitStack() as stack:
        alive: Child | None = None
        for number, life in enumerate(trial.lives):
            if alive is not None and not life.overlap:
                said.append(_kill(alive))
                alive = None
            worker = Child(
                "tests.crash._worker",
                trial.journal,
                str(trial.seed),
                str(effects),
                str(acks),
                str(hosts.lease_ttl),
            )
            stack.enter_context(worker)
            worker.expect("opening", timeout=30)
            if alive is not None:  # both run now
                time.sleep(life.delay / 2)
                said.append(_kill(alive))
            time.sleep(life.delay + (hosts.takeover if number else 0.0))
            alive = worker
        assert alive is not None
        said.append(_kill(alive))
    return said


def _left_unopenable(path: str, said: list[list[str]]) -> bool:
    """The bug test_found_bugs.py shows: the first worker, killed while it
    created the journal, left one that no open accepts. Nothing more of the
    trial can be checked. (Otherwise what it did not make yet is made here,
    as the next host would make it.)"""
    if "ready" in said[0]:
        return False
    if _on_postgres(path):
        # The marker is made in one transaction, before any table: a kill
        # leaves it whole or absent, and the next host makes the rest.
        backend = backend_for(path)
        backend.prepare()
        RunsApp(backend.env()).close()
        return False
    try:
        Journal.open(path).close()
    except JournalPathError as error:
        if "chronik did not make" not in str(error):
            raise
        _stats.count("bug: journals left unopenable by a kill while creating them")
        return True
    return False


def _kill(worker: Child) -> list[str]:
    worker.kill()
    return ["opening", *worker.lines_left()]


def _finish(
    path: str, hosts: Hosts, runs: list[PlannedRun], run_ids: list[str], context: str
) -> None:
    with ActorSystem.open(path, idle_timeout=0.2, lease_ttl=hosts.lease_ttl) as system:
        for run in runs:
            ref = system.spawn(WORKFLOWS[run.workflow], *run.args, id=run.run_id)
            for signal in run.signals:
                try:
                    ref.send(signal.topic, signal.payload, signal_id=signal.signal_id)
                except RunFinishedError:
                    break  # it ended without it, as the model says it does
        for run_id in run_ids:
            try:
                system.ref(run_id).result(timeout=RESULT_TIMEOUT)
            except WorkflowFailedError:
                pass  # a failure is an ending: compared with the model's below
            except Exception as error:
                raise AssertionError(f"{context}: run {run_id!r}: {error!r}") from error


def _acknowledged(acks: Path) -> dict[str, list[str]]:
    """The signal ids the worker saw acknowledged, by run."""
    by_run: dict[str, list[str]] = defaultdict(list)
    if acks.exists():
        for signal_id in acks.read_text().splitlines():
            by_run[signal_id.rpartition(":")[0]].append(signal_id)
    return by_run


def _effects(log: Path) -> list[Effect]:
    if not log.exists():
        return []
    effects = []
    for line in log.read_text().splitlines():
        key, step, attempt = line.split(" ")
        effects.append(Effect(key, step, int(attempt)))
    return effects


def _count_kills(
    said: list[list[str]],
    lives: list[Life],
    runs: list[PlannedRun],
    left: Runs,
    acked: dict[str, list[str]],
) -> None:
    for lines in said:
        if "ready" not in lines:
            _stats.count("kill: workers killed while opening the journal")
        elif "done" in lines:
            _stats.count("kill: workers killed after all their runs ended")
        else:
            _stats.count("kill: workers killed mid-flight")
    overlapped = sum(1 for life in lives if life.overlap)
    _stats.count("kill: workers started while another ran (one journal)", overlapped)
    ended = sum(1 for events in left.values() if ending_of(events) is not None)
    _stats.count("kill: runs in flight at a trial's last kill", len(left) - ended)
    spawned = sum(1 for run in runs if run.run_id in left)
    _stats.count(
        "kill: runs not yet spawned at a trial's last kill", len(runs) - spawned
    )
    acknowledged = sum(map(len, acked.values()))
    _stats.count("kill: signals acknowledged before the kills", acknowledged)


def _count_effects(before: list[Effect], after: list[Effect], final: Runs) -> None:
    again = {e.key for e in after} & {e.key for e in before}
    _stats.count("kill: steps run again after a kill (same key)", len(again))
    _stats.count("kill: step executions", len(before) + len(after))
    failures = [
        e for events in final.values() for e in events if isinstance(e, StepFailed)
    ]
    transient = sum(1 for failure in failures if not failure.final)
    _stats.count("kill: transient step failures recorded", transient)
    _stats.count("kill: steps failed for good recorded", len(failures) - transient)
