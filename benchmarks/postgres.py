"""PostgreSQL benchmarks: chronik's PostgreSQL recorder against eventsourcing's own.

    .venv/bin/python benchmarks/postgres.py           # default sizes, about a minute
    .venv/bin/python benchmarks/postgres.py --quick   # smoke run, a few seconds

The server: ``--dsn``, else ``CHRONIK_PG_DSN``, else 127.0.0.1:5432 as user postgres,
database ``test``. Prints the server's facts, then one table: each measurement with
chronik's figure (``journal._postgres.PostgresJournalRecorder``: text ids, gapless
notification ids, group commit), the baseline's (eventsourcing's
``PostgresApplicationRecorder``: uuid ids, one transaction per append), their ratio,
the target and whether it was met. Both run against the same server in the same
run; each measurement gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import psycopg
from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier

_REPO = Path(__file__).resolve().parent.parent
# Run as a script, Python puts benchmarks/ first on sys.path; resolve imports from
# the repository root, as the other benchmarks do.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
sys.path.insert(0, str(_REPO))

from benchmarks.journal import Row, Target, run_threads, table  # noqa: E402
from journal._location import connection_settings  # noqa: E402
from journal._postgres import PostgresJournalRecorder, create_schema  # noqa: E402

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
TOPIC = "workflows.orders:Order.ItemAdded"
STATE = bytes(i % 251 for i in range(200))


@attrs.frozen
class Scale:
    threads: int
    appends_per_thread: int  # one event per append
    rounds: int  # throughput rounds; each runs both contenders, in rotated order
    latency_rounds: int  # rounds alternating the two, after a warm-up round
    latency_per_round: int
    idle_seconds: float = 5.0


DEFAULT = Scale(
    threads=64,
    appends_per_thread=40,
    rounds=3,
    latency_rounds=5,
    latency_per_round=100,
)
QUICK = Scale(
    threads=8,
    appends_per_thread=5,
    rounds=1,
    latency_rounds=1,
    latency_per_round=20,
    idle_seconds=1.0,
)


@attrs.frozen
class Results:
    rows: list[Row]
    rates: dict[str, list[float]]
    mean_group: float


# -- the two recorders, each on a schema of its own ---------------------------------

Make = Callable[[PostgresDatastore], ApplicationRecorder]


def make_chronik(datastore: PostgresDatastore) -> ApplicationRecorder:
    return PostgresJournalRecorder(datastore)


def make_library(datastore: PostgresDatastore) -> ApplicationRecorder:
    return PostgresApplicationRecorder(datastore)


def stream_id(make: Make) -> Any:
    """A new stream id of the kind the recorder stores: text or uuid."""
    return f"order-{uuid.uuid4()}" if make is make_chronik else uuid.uuid4()


@contextmanager
def recorder_on_new_schema(
    server: dict[str, str], make: Make, pool_size: int
) -> Iterator[ApplicationRecorder]:
    schema = new_schema("bench")
    datastore = PostgresDatastore(
        schema=schema,
        pool_size=pool_size,
        max_overflow=0,
        originator_id_type="text" if make is make_chronik else "uuid",
        **server,  # type: ignore[arg-type]
    )
    try:
        create_schema(datastore)
        recorder = make(datastore)
        recorder.create_table()  # type: ignore[attr-defined]
        datastore.pool.wait()
        yield recorder
    finally:
        datastore.close()
        drop_schema(server, schema)


def new_schema(what: str) -> str:
    return f"chronik_{what}_{uuid.uuid4().hex[:12]}"


def drop_schema(server: dict[str, str], schema: str) -> None:
    with psycopg.connect(autocommit=True, **server) as conn:  # type: ignore[arg-type]
        conn.execute(
            SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(Identifier(schema))
        )


def stored_event(stream: Any, version: int) -> StoredEvent:
    return StoredEvent(stream, version, TOPIC, STATE)


# -- 1. 64 threads, one event per append ---------------------------------------------


def appends_per_second(
    server: dict[str, str], make: Make, scale: Scale
) -> tuple[float, float | None]:
    """Appends/s of ``scale.threads`` threads, each appending one event at a time
    to a stream of its own; and chronik's mean group size (None for the library)."""
    with recorder_on_new_schema(server, make, pool_size=scale.threads) as recorder:

        def writer(appends: int) -> None:
            stream = stream_id(make)
            for version in range(1, appends + 1):
                recorder.insert_events([stored_event(stream, version)])

        # Untimed: the same appends first, so that every connection of the pool
        # has served some (a session prepares its statements, and plans
        # chronik's append function, once), as in a host running for a while.
        total = scale.threads * scale.appends_per_thread
        appends = functools.partial(writer, scale.appends_per_thread)
        run_threads([appends] * scale.threads)
        elapsed = run_threads([appends] * scale.threads)
        recorded = (recorder.max_notification_id() or 0) - total
        if recorded != total:
            raise RuntimeError(
                f"{type(recorder).__name__} recorded {recorded} notifications, "
                f"{total} were appended: the benchmark is not measuring what it says"
            )
        group = None
        if isinstance(recorder, PostgresJournalRecorder):
            group = recorder.commit_stats().mean_group
        return total / elapsed, group


def throughput_rounds(
    server: dict[str, str], scale: Scale
) -> tuple[dict[str, list[float]], float]:
    contenders: list[tuple[str, Make]] = [
        ("chronik", make_chronik),
        ("eventsourcing", make_library),
    ]
    rates: dict[str, list[float]] = {name: [] for name, _ in contenders}
    groups: list[float] = []
    for round_ in range(scale.rounds):
        shift = round_ % len(contenders)
        for name, make in contenders[shift:] + contenders[:shift]:
            rate, group = appends_per_second(server, make, scale)
            rates[name].append(rate)
            if group is not None:
                groups.append(group)
    return rates, statistics.mean(groups)


# -- 2. single-thread latency --------------------------------------------------------


def measure_latency(
    server: dict[str, str], scale: Scale
) -> tuple[list[float], list[float]]:
    """Seconds per one-event append of one thread, chronik's and the library's,
    alternating so that drift in the server's speed hits both alike."""
    with (
        recorder_on_new_schema(server, make_chronik, pool_size=2) as chronik,
        recorder_on_new_schema(server, make_library, pool_size=2) as library,
    ):
        streams = {chronik: stream_id(make_chronik), library: stream_id(make_library)}
        samples: dict[ApplicationRecorder, list[float]] = {chronik: [], library: []}
        version = 0
        for round_ in range(scale.latency_rounds + 1):  # round 0 warms up
            for _ in range(scale.latency_per_round):
                version += 1
                for recorder in (chronik, library):
                    event = stored_event(streams[recorder], version)
                    began = time.perf_counter()
                    recorder.insert_events([event])
                    if round_ > 0:
                        samples[recorder].append(time.perf_counter() - began)
        return samples[chronik], samples[library]


# -- an idle host -----------------------------------------------------------------


IDLE_RUNS = 100


class _Counter:
    """Counts what this process asks of the server: statements (psycopg's
    execute) and transactions (psycopg's transaction blocks, which every
    eventsourcing and chronik transaction is)."""

    def __init__(self) -> None:
        self.statements = 0
        self.transactions = 0
        self._lock = threading.Lock()
        self._originals: list[tuple[type[Any], str, Callable[..., Any]]] = []

    def _wrap(self, cls: type[Any], name: str, counter: str) -> None:
        original = getattr(cls, name)
        self._originals.append((cls, name, original))

        def counted(this: Any, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                setattr(self, counter, getattr(self, counter) + 1)
            return original(this, *args, **kwargs)

        setattr(cls, name, counted)

    def __enter__(self) -> _Counter:
        self._wrap(psycopg.Cursor, "execute", "statements")
        self._wrap(psycopg.Connection, "execute", "statements")
        self._wrap(psycopg.Transaction, "__enter__", "transactions")
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, name, original in self._originals:
            setattr(cls, name, original)


def idle_costs(server: dict[str, str], seconds: float) -> tuple[float, float]:
    """Transactions and statements per second an idle host asks of the server:
    one ActorSystem on a fresh schema, ``IDLE_RUNS`` runs waiting on a signal,
    left alone a second, then counted for ``seconds``."""
    from actors import ActorSystem
    from benchmarks._workloads import wait_for_go

    schema = new_schema("idle")
    password = f":{server['password']}" if server["password"] else ""
    url = (
        f"postgresql://{server['user']}{password}@{server['host']}:"
        f"{server['port']}/{server['dbname']}?schema={schema}"
    )
    try:
        with ActorSystem.open(url) as system:
            for index in range(IDLE_RUNS):
                system.spawn(wait_for_go, id=f"idle-{index}")
            time.sleep(1.0)
            with _Counter() as counter:
                time.sleep(seconds)
            return counter.transactions / seconds, counter.statements / seconds
    finally:
        drop_schema(server, schema)


def run(server: dict[str, str], scale: Scale) -> Results:
    rates, mean_group = throughput_rounds(server, scale)
    chronik_latency, library_latency = measure_latency(server, scale)
    idle, statements = idle_costs(server, scale.idle_seconds)
    rows = [
        Row(
            f"{scale.threads} threads x one event per append",
            statistics.median(rates["chronik"]),
            statistics.median(rates["eventsourcing"]),
            "appends/s",
            Target(10, at_least=True),
        ),
        Row(
            "one thread: one-event append (median)",
            statistics.median(chronik_latency),
            statistics.median(library_latency),
            "s",
            None,
        ),
        Row(
            "one thread: one-event append (p99)",
            percentile(chronik_latency, 0.99),
            percentile(library_latency, 0.99),
            "s",
            None,
        ),
        Row(
            f"an idle host ({IDLE_RUNS} runs waiting): transactions per second "
            "(baseline: one a second)",
            idle,
            1.0,
            "transactions/s",
            Target(1, at_least=False),
        ),
        Row(
            f"an idle host ({IDLE_RUNS} runs waiting): statements per second",
            statements,
            1.0,
            "statements/s",
            None,
        ),
    ]
    return Results(rows, rates, mean_group)


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- output --------------------------------------------------------------------------


def footnotes(results: Results, scale: Scale) -> list[str]:
    by_round = "; ".join(
        f"{name}: {', '.join(f'{rate:,.0f}' for rate in samples)}"
        for name, samples in results.rates.items()
    )
    return [
        "ratio = chronik / baseline. baseline = eventsourcing's "
        "PostgresApplicationRecorder (uuid ids, LOCK TABLE ... IN EXCLUSIVE MODE "
        "and a commit per append, POSTGRES_ENABLE_DB_FUNCTIONS off); chronik = "
        "PostgresJournalRecorder (text ids, gapless ids, hash chains, group commit "
        "as one call of its append function).",
        f"Throughput: each of {scale.threads} threads appends "
        f"{scale.appends_per_thread} events, one per insert_events call, to a "
        "stream of its own, after as many untimed ones (every pooled session "
        "prepares its statements, chronik's plans its function); all share one "
        "process (and its GIL). Each recorder "
        f"has a pool of {scale.threads} connections. Median of {scale.rounds} "
        f"round(s), each on fresh schemas; appends/s round by round: {by_round}. "
        f"chronik's mean group: {results.mean_group:.1f} appends per transaction.",
        f"Latency: {scale.latency_rounds * scale.latency_per_round} appends each, "
        "one thread, chronik and the library alternating, after a warm-up of "
        f"{scale.latency_per_round}.",
    ]


def server_info(server: dict[str, str]) -> list[str]:
    with psycopg.connect(autocommit=True, **server) as conn:  # type: ignore[arg-type]
        facts = {
            name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
            for name in (
                "server_version",
                "fsync",
                "synchronous_commit",
                "wal_sync_method",
            )
        }
    affinity = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    )
    return [
        f"cpus: {os.cpu_count()} (usable: {affinity})",
        f"server: PostgreSQL {facts['server_version']} at "
        f"{server['host']}:{server['port']} (database {server['dbname']}); "
        f"fsync={facts['fsync']}, synchronous_commit={facts['synchronous_commit']}, "
        f"wal_sync_method={facts['wal_sync_method']}",
        f"eventsourcing {importlib.metadata.version('eventsourcing')}; "
        f"psycopg {importlib.metadata.version('psycopg')}",
        "load average (1, 5, 15 min): "
        + ", ".join(f"{load:.2f}" for load in os.getloadavg())
        + " (other processes share the cpus and the server)",
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("CHRONIK_PG_DSN") or DEFAULT_DSN,
        help="the PostgreSQL server (default: CHRONIK_PG_DSN, else %(default)s)",
    )
    parser.add_argument("--threads", type=int, help="concurrent writers")
    parser.add_argument("--appends-per-thread", type=int)
    parser.add_argument("--rounds", type=int, help="throughput rounds (median taken)")
    parser.add_argument(
        "--idle-seconds", type=float, help="how long an idle host is watched"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if any target is missed"
    )
    return parser.parse_args(argv)


def scale_from(args: argparse.Namespace) -> Scale:
    scale = QUICK if args.quick else DEFAULT
    overrides = {
        "threads": args.threads,
        "appends_per_thread": args.appends_per_thread,
        "rounds": args.rounds,
        "idle_seconds": args.idle_seconds,
    }
    return attrs.evolve(scale, **{k: v for k, v in overrides.items() if v is not None})


def server_from(dsn: str) -> dict[str, str]:
    return connection_settings(dsn, dbname="test")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    scale = scale_from(args)
    server = server_from(args.dsn)
    print("\n".join(server_info(server)), end="\n\n", flush=True)
    results = run(server, scale)
    print("\n".join(table(results.rows)))
    print()
    print("\n".join(f"* {note}" for note in footnotes(results, scale)))
    missed = [row.measurement for row in results.rows if row.met is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
