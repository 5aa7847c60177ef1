"""Journal benchmarks: chronik's LMDB journal against bare baselines, fsync on.

    .venv/bin/python benchmarks/journal.py           # default sizes, well under 2 min
    .venv/bin/python benchmarks/journal.py --quick   # smoke run, a few seconds

Prints machine facts, then one table: each measurement with chronik's figure, the
baseline's, their ratio (chronik / baseline), the target and whether it was met.
Every figure comes from this run. All data lives in one temporary directory on the
repository's filesystem (or under --tmp-dir), removed at exit.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from uuid import UUID, uuid4

import attrs
import lmdb
import msgpack
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.sqlite import SQLiteFactory
from eventsourcing.utils import Environment

_REPO = Path(__file__).resolve().parent.parent
# Run as a script, Python puts benchmarks/ first on sys.path, where this file (named
# journal.py) would shadow the journal package: resolve imports from the repo root.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
sys.path.insert(0, str(_REPO))

from journal import Journal, LMDBApplicationRecorder  # noqa: E402

TOPIC = "workflows.orders:Order.ItemAdded"
STATE = bytes(i % 251 for i in range(200))
_BARE_MAP_SIZE = 1 << 30
_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


@attrs.frozen
class Scale:
    latency_rounds: int  # rounds alternating chronik and bare LMDB, after a warm-up
    latency_per_round: int
    threads: int
    events_per_thread: int
    events_per_call: int  # the informative batched row
    baseline_batch: int  # events per commit of the bare LMDB throughput baseline
    rounds: int  # throughput rounds; each runs every contender once, in rotated order
    rehydrate_events: int
    rehydrate_runs: int
    save_chunk: int


DEFAULT = Scale(
    latency_rounds=10,
    latency_per_round=200,
    threads=64,
    events_per_thread=200,
    events_per_call=10,
    baseline_batch=100,
    rounds=5,
    rehydrate_events=10_000,
    rehydrate_runs=5,
    save_chunk=500,
)
QUICK = Scale(
    latency_rounds=2,
    latency_per_round=25,
    threads=8,
    events_per_thread=20,
    events_per_call=10,
    baseline_batch=100,
    rounds=1,
    rehydrate_events=500,
    rehydrate_runs=2,
    save_chunk=100,
)


@attrs.frozen
class Target:
    """A bound on the ratio chronik / baseline."""

    bound: float
    at_least: bool

    def met(self, ratio: float) -> bool:
        return ratio >= self.bound if self.at_least else ratio <= self.bound

    def __str__(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.bound:g}x"


@attrs.frozen
class Row:
    measurement: str
    chronik: float
    baseline: float
    unit: str  # "s" (shown in ms) or "ev/s"
    target: Target | None  # None: informative only

    @property
    def ratio(self) -> float:
        return self.chronik / self.baseline

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.ratio)


# -- records ------------------------------------------------------------------

Record = tuple[bytes, bytes, bytes]
"""What the journal writes for one event: event key, event value, notification key."""


def bare_record(stream: UUID, version: int, notification_id: int) -> Record:
    # The journal's layout (journal/_keys.py, journal/_recorders.py): a 25-byte event
    # key (tag, UUID, version with the sign bit flipped) -> msgpack [id, topic, state];
    # and an 8-byte notification id -> event key.
    key = b"\x01" + stream.bytes + struct.pack(">Q", version + (1 << 63))
    value = msgpack.packb([notification_id, TOPIC, STATE], use_bin_type=True)
    return key, value, struct.pack(">Q", notification_id)


def stored_event(stream: UUID, version: int) -> StoredEvent:
    return StoredEvent(
        originator_id=stream, originator_version=version, topic=TOPIC, state=STATE
    )


def interleaved(streams: Sequence[UUID], per_stream: int) -> Iterator[tuple[UUID, int]]:
    """(stream, version) in the order concurrent writers roughly produce them."""
    for version in range(1, per_stream + 1):
        for stream in streams:
            yield stream, version


class BareLMDB:
    """The baseline: the journal's records put straight into LMDB, nothing else."""

    def __init__(self, path: Path) -> None:
        self.env = lmdb.open(
            str(path), map_size=_BARE_MAP_SIZE, max_dbs=2, sync=True, metasync=True
        )
        self.events = self.env.open_db(b"events")
        self.notifications = self.env.open_db(b"notifications")

    def commit(self, records: Sequence[Record]) -> None:
        with self.env.begin(write=True) as txn:
            for key, value, id_key in records:
                txn.put(key, value, db=self.events)
                txn.put(id_key, key, db=self.notifications, append=True)

    def close(self) -> None:
        self.env.close()


# -- 1. single writer latency ---------------------------------------------------


def measure_latency(root: Path, scale: Scale) -> tuple[list[float], list[float]]:
    """Seconds per one-event commit, chronik's and bare LMDB's, measured in
    alternating rounds so that drift in the disk's speed hits both alike."""
    journal = Journal.open(str(root / "latency-journal"))
    bare = BareLMDB(root / "latency-lmdb")
    chronik_stream, bare_stream = uuid4(), uuid4()
    chronik: list[float] = []
    baseline: list[float] = []
    try:
        recorder = LMDBApplicationRecorder(journal)
        version = 0
        for round_ in range(scale.latency_rounds + 1):  # round 0 warms up
            keep = round_ > 0
            for _ in range(scale.latency_per_round):
                version += 1
                one_chronik = [stored_event(chronik_stream, version)]
                one_bare = [bare_record(bare_stream, version, version)]
                began = time.perf_counter()
                recorder.insert_events(one_chronik)
                middle = time.perf_counter()
                bare.commit(one_bare)
                ended = time.perf_counter()
                if keep:
                    chronik.append(middle - began)
                    baseline.append(ended - middle)
    finally:
        bare.close()
        journal.close()
    return chronik, baseline


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- 2. throughput under concurrent writers ---------------------------------------


def run_threads(work: Sequence[Callable[[], object]]) -> float:
    """Run each callable on a thread of its own, all released together; return the
    seconds from release until the last one finishes. A worker's error is raised."""
    release = threading.Barrier(len(work) + 1)
    errors: list[BaseException] = []

    def body(job: Callable[[], object]) -> None:
        release.wait()
        try:
            job()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=body, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    release.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return elapsed


def append_all(
    recorder: ApplicationRecorder, calls: Sequence[list[StoredEvent]]
) -> None:
    for events in calls:
        recorder.insert_events(events)


def writer_calls(scale: Scale, per_call: int) -> list[list[list[StoredEvent]]]:
    """For each thread, its insert_events calls: its own stream, in order."""
    plans = []
    for _ in range(scale.threads):
        stream = uuid4()
        events = [
            stored_event(stream, v) for v in range(1, scale.events_per_thread + 1)
        ]
        plans.append(
            [events[i : i + per_call] for i in range(0, len(events), per_call)]
        )
    return plans


def concurrent_events_per_second(
    recorder: ApplicationRecorder, scale: Scale, per_call: int
) -> float:
    plans = writer_calls(scale, per_call)
    elapsed = run_threads([partial(append_all, recorder, calls) for calls in plans])
    total = scale.threads * scale.events_per_thread
    recorded = recorder.max_notification_id()
    if recorded != total:
        raise RuntimeError(
            f"{type(recorder).__name__} recorded {recorded} notifications, "
            f"{total} were appended: the benchmark is not measuring what it says"
        )
    return total / elapsed


def chronik_throughput(path: Path, scale: Scale, per_call: int) -> float:
    journal = Journal.open(str(path))
    try:
        return concurrent_events_per_second(
            LMDBApplicationRecorder(journal), scale, per_call
        )
    finally:
        journal.close()


def sqlite_throughput(path: Path, scale: Scale) -> tuple[float, tuple[str, str]]:
    """Events/s of eventsourcing's SQLite recorder, and its durability settings."""
    factory = SQLiteFactory(
        Environment(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(path),
            }
        )
    )
    try:
        rate = concurrent_events_per_second(factory.application_recorder(), scale, 1)
        return rate, sqlite_durability(factory)
    finally:
        factory.close()


def sqlite_durability(factory: SQLiteFactory) -> tuple[str, str]:
    """The journal mode and synchronous level of the recorder's own connections."""
    with factory.datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        level = cursor.fetchone()[0]
    return mode, f"{_SYNCHRONOUS.get(level, '?')} ({level})"


def bare_batched_throughput(path: Path, scale: Scale) -> float:
    """Events/s of one thread putting the same records, ``baseline_batch`` a commit."""
    streams = [uuid4() for _ in range(scale.threads)]
    records = [
        bare_record(stream, version, notification_id)
        for notification_id, (stream, version) in enumerate(
            interleaved(streams, scale.events_per_thread), start=1
        )
    ]
    step = scale.baseline_batch
    batches = [records[i : i + step] for i in range(0, len(records), step)]
    bare = BareLMDB(path)
    try:
        began = time.perf_counter()
        for batch in batches:
            bare.commit(batch)
        elapsed = time.perf_counter() - began
    finally:
        bare.close()
    return len(records) / elapsed


# -- 3. rehydration ----------------------------------------------------------------


class Tally(Aggregate):
    """An aggregate whose every event appends one small value."""

    def __init__(self) -> None:
        self.values: list[int] = []

    @event("Appended")
    def append(self, value: int) -> None:
        self.values.append(value)


def rehydrate_seconds(envs: Sequence[dict[str, str]], scale: Scale) -> list[float]:
    """For each environment, the median seconds of ``repository.get`` of one
    aggregate of ``rehydrate_events`` events (its creation included); the gets of
    the applications alternate, so that drift hits all alike."""
    apps: list[Application[UUID]] = [Application(env=env) for env in envs]
    try:
        ids = [filled_tally(app, scale) for app in apps]
        times: list[list[float]] = [[] for _ in apps]
        for _ in range(scale.rehydrate_runs):
            for app, tally_id, samples in zip(apps, ids, times, strict=True):
                samples.append(timed_get(app, tally_id, scale.rehydrate_events))
    finally:
        for app in apps:
            app.close()
    return [statistics.median(samples) for samples in times]


def filled_tally(app: Application[UUID], scale: Scale) -> UUID:
    tally = Tally()
    for value in range(scale.rehydrate_events - 1):
        tally.append(value)
        if len(tally.pending_events) >= scale.save_chunk:
            app.save(tally)
    app.save(tally)
    return tally.id


def timed_get(app: Application[UUID], tally_id: UUID, version: int) -> float:
    began = time.perf_counter()
    tally: Tally = app.repository.get(tally_id)
    elapsed = time.perf_counter() - began
    if tally.version != version:
        raise RuntimeError(
            f"rehydrated {tally_id} at version {tally.version}, expected {version}"
        )
    return elapsed


# -- the run ---------------------------------------------------------------------


ONE_PER_CALL = "chronik, 1 event/call"
BATCHED = "chronik, batched calls"
BARE = "bare LMDB"
SQLITE = "eventsourcing.sqlite"


@attrs.frozen
class Results:
    rows: list[Row]
    rates: dict[str, list[float]]  # each contender's events/s, round by round
    sqlite_durability: tuple[str, str]  # journal mode, synchronous level


def throughput_rounds(
    root: Path, scale: Scale
) -> tuple[dict[str, list[float]], tuple[str, str]]:
    """Every contender's events/s in each round, the order rotated round by round
    (so no contender always follows the same one on the disk); and SQLite's
    durability settings."""
    durability: list[tuple[str, str]] = []

    def sqlite(path: Path) -> float:
        rate, settings = sqlite_throughput(path, scale)
        durability.append(settings)
        return rate

    contenders: dict[str, Callable[[Path], float]] = {
        ONE_PER_CALL: partial(chronik_throughput, scale=scale, per_call=1),
        BATCHED: partial(
            chronik_throughput, scale=scale, per_call=scale.events_per_call
        ),
        BARE: partial(bare_batched_throughput, scale=scale),
        SQLITE: sqlite,
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(scale.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            path = root / f"round{round_}-{names.index(name)}"
            rates[name].append(contenders[name](path))
    return rates, durability[-1]


def run(root: Path, scale: Scale) -> Results:
    chronik_latency, bare_latency = measure_latency(root, scale)
    rates, durability = throughput_rounds(root, scale)
    rate = {name: statistics.median(samples) for name, samples in rates.items()}
    chronik_get, popo_get = rehydrate_seconds(
        [
            {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": str(root / "rehydrate")},
            {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        ],
        scale,
    )
    writers = f"{scale.threads} threads x {scale.events_per_thread} events"
    bare = f"bare LMDB, 1 thread, {scale.baseline_batch}/commit"
    rows = [
        Row(
            "1 writer, 1 event/commit: median latency vs bare LMDB",
            statistics.median(chronik_latency),
            statistics.median(bare_latency),
            "s",
            Target(1.5, at_least=False),
        ),
        Row(
            "1 writer, 1 event/commit: p99 latency vs bare LMDB",
            percentile(chronik_latency, 0.99),
            percentile(bare_latency, 0.99),
            "s",
            None,
        ),
        Row(
            f"{writers}, 1/call vs {bare}",
            rate[ONE_PER_CALL],
            rate[BARE],
            "ev/s",
            Target(0.5, at_least=True),
        ),
        Row(
            f"{writers}, 1/call vs eventsourcing.sqlite (same load)",
            rate[ONE_PER_CALL],
            rate[SQLITE],
            "ev/s",
            Target(5, at_least=True),
        ),
        Row(
            f"{writers}, {scale.events_per_call}/call vs {bare}",
            rate[BATCHED],
            rate[BARE],
            "ev/s",
            None,
        ),
        Row(
            f"rehydrate {scale.rehydrate_events:,} events vs eventsourcing.popo",
            chronik_get,
            popo_get,
            "s",
            Target(1.5, at_least=False),
        ),
    ]
    return Results(rows, rates, durability)


# -- output ----------------------------------------------------------------------


def figure(value: float, unit: str) -> str:
    if unit.endswith("/s"):  # a rate: ev/s, appends/s, transactions/s
        places = 0 if value >= 100 else 1 if value >= 10 else 2
        return f"{value:,.{places}f} {unit}"
    ms = value * 1e3
    decimals = 3 if ms < 1 else 2 if ms < 10 else 1 if ms < 100 else 0
    return f"{ms:,.{decimals}f} ms"


def table(rows: Sequence[Row]) -> list[str]:
    header = ("measurement", "chronik", "baseline", "ratio", "target", "met")
    cells = [
        (
            row.measurement,
            figure(row.chronik, row.unit),
            figure(row.baseline, row.unit),
            f"{row.ratio:.2f}x",
            "-" if row.target is None else str(row.target),
            {None: "-", True: "yes", False: "no"}[row.met],
        )
        for row in rows
    ]
    widths = [
        max(len(line[i]) for line in [header, *cells]) for i in range(len(header))
    ]

    def line(values: Sequence[str]) -> str:
        first = values[0].ljust(widths[0])
        rest = [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *map(line, cells)]


def footnotes(results: Results, scale: Scale) -> list[str]:
    return [
        "ratio = chronik / baseline. fsync on everywhere: the journal at its default "
        "(LMDB_SYNC=true), bare LMDB with sync=True, metasync=True.",
        "Bare LMDB puts the bytes the journal puts per event: a 25-byte event key -> "
        f"msgpack [id, topic, {len(STATE)}-byte state], and an 8-byte notification "
        "id -> event key. It skips what the journal adds: the conflict check, "
        "assigning ids, encoding, group commit.",
        f"Latency: {scale.latency_rounds * scale.latency_per_round} commits each, "
        "chronik and bare LMDB alternating, after a warm-up of "
        f"{scale.latency_per_round}.",
        rounds_note(results.rates, scale),
        sqlite_note(results.sqlite_durability),
        "Rehydration: Application.repository.get, no snapshots, no cache; median of "
        f"{scale.rehydrate_runs} alternating runs. popo keeps stored events in memory "
        "but still decodes each one (JSON transcoder; chronik: msgpack).",
    ]


def rounds_note(rates: dict[str, list[float]], scale: Scale) -> str:
    by_round = "; ".join(
        f"{name}: {', '.join(f'{rate:,.0f}' for rate in samples)}"
        for name, samples in rates.items()
    )
    return (
        f"Throughput: each of {scale.threads} threads appends to a stream of its own; "
        "all share one process (and its GIL) and one journal or SQLite file. "
        f"{scale.events_per_call}-event calls for the batched row. Median of "
        f"{scale.rounds} round(s); events/s round by round: {by_round}."
    )


def sqlite_note(durability: tuple[str, str]) -> str:
    mode, level = durability
    consequence = (
        "each commit fsyncs the WAL: as durable as the journal"
        if level.startswith(("FULL", "EXTRA"))
        else "commits are NOT fsynced (only checkpoints are): less durable than "
        "the journal, so the comparison flatters SQLite"
    )
    return (
        "eventsourcing.sqlite switches a file database to journal_mode=WAL and never "
        "sets 'synchronous', so SQLite's compiled default applies. Read back from the "
        f"recorder's own connection: journal_mode={mode}, synchronous={level}; "
        f"{consequence}."
    )


def machine_info(root: Path) -> list[str]:
    affinity = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    )
    same = os.stat(root).st_dev == os.stat(_REPO).st_dev
    return [
        f"cpus: {os.cpu_count()} (usable: {affinity}), {cpu_model()}",
        f"python: {platform.python_implementation()} {platform.python_version()} "
        f"on {platform.platform()}",
        f"lmdb: py-lmdb {lmdb.__version__}, LMDB {'.'.join(map(str, lmdb.version()))}; "
        f"eventsourcing {importlib.metadata.version('eventsourcing')}; "
        f"msgpack {importlib.metadata.version('msgpack')}; "
        f"sqlite {sqlite3.sqlite_version}",
        "load average (1, 5, 15 min): "
        + ", ".join(f"{load:.2f}" for load in os.getloadavg())
        + " (other processes share the cpus and the disk)",
        f"temp dir: {root}",
        f"  filesystem: {filesystem_of(root)}; "
        f"{'same' if same else 'NOT the same'} device as the repository",
    ]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def filesystem_of(path: Path) -> str:
    """The mount holding ``path``, from /proc/mounts (the last, longest match)."""
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return "unknown (no /proc/mounts)"
    real = os.path.realpath(path)
    best: list[str] | None = None
    for entry in mounts:
        device, mount, fstype, options = entry.split()[:4]
        mount = mount.replace("\\040", " ")
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and (best is None or len(mount) >= len(best[1])):
            best = [device, mount, fstype, options]
    if best is None:
        return "unknown"
    device, mount, fstype, options = best
    return f"{fstype} on {device} at {mount} ({options})"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--threads", type=int, help="concurrent writers")
    parser.add_argument("--events-per-thread", type=int)
    parser.add_argument("--rehydrate-events", type=int)
    parser.add_argument("--rounds", type=int, help="throughput rounds (median taken)")
    parser.add_argument(
        "--tmp-dir",
        type=Path,
        default=_REPO,
        help="where the temporary directory goes (default: the repository, so the "
        "data sits on the repository's filesystem)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if any target is missed"
    )
    return parser.parse_args(argv)


def scale_from(args: argparse.Namespace) -> Scale:
    scale = QUICK if args.quick else DEFAULT
    overrides = {
        "threads": args.threads,
        "events_per_thread": args.events_per_thread,
        "rehydrate_events": args.rehydrate_events,
        "rounds": args.rounds,
    }
    return attrs.evolve(scale, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    scale = scale_from(args)
    root = Path(tempfile.mkdtemp(prefix=".bench-journal-", dir=args.tmp_dir))
    try:
        print("\n".join(machine_info(root)), end="\n\n", flush=True)
        results = run(root, scale)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(table(results.rows)))
    print()
    print("\n".join(f"* {note}" for note in footnotes(results, scale)))
    missed = [row.measurement for row in results.rows if row.met is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
