"""W1-W4 on a PostgreSQL journal, against DBOS Transact on the same server.

    .venv/bin/python benchmarks/pg_workflows.py --peers /tmp/peer-pg   # + DBOS
    .venv/bin/python benchmarks/pg_workflows.py --quick                # smoke run

The workloads are ``benchmarks/workflows.py``'s (the peer harness's definitions),
each on a fresh schema of the server (``--dsn``, else ``CHRONIK_PG_DSN``, else
127.0.0.1:5432 as postgres, database ``test``), dropped afterwards. W1: 10 runs of
20 sequential stamped steps after a warm-up, the median of the gaps between stamps;
W2: 500 runs of 3 steps started one by one, first start to last completion, CPU of
this process per step (the median of 3 rounds, as on LMDB); W3: signal to
completion after the peers' seeded pauses.
``--peers DIR`` reads the peer harness's JSON files of the same sitting (run it
with ``PEERS=dbos PEER_DBOS_PG_URL=postgresql://postgres@127.0.0.1:5432``) and
states the issue's targets against DBOS: W2 steps/s >= 3x, W1 per step <= DBOS,
W4 <= DBOS. W4: ``workflows.py``'s recovery (200 runs waiting, SIGKILL, t0 just
before a new process is spawned, the signals sent at once, t1 all completed) on a
fresh schema per round, twice: the new process restarting the killed host under
its name (``host_name``, as DBOS restarts an executor under its id: it takes the
killed life's leases at once), and a new host of no name, which waits until the
killed one's leases run out (no presence lock tells a PostgreSQL host that another
is dead; ``--lease-ttl``, both processes', default chronik's 5 s). The notes give
each round's phases.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
sys.path.insert(0, str(_REPO))
from benchmarks import workflows as bench  # noqa: E402

# isort: split

import psycopg  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402
from psycopg.sql import SQL, Identifier  # noqa: E402

from actors import ActorSystem  # noqa: E402
from benchmarks._workloads import stamped_steps  # noqa: E402
from journal import Leases, PostgresLocation, parse_location  # noqa: E402
from journal._pg_leases import PostgresLeaseStorage  # noqa: E402

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
DEFAULT_LEASE_TTL = 5.0  # ActorSystem.open's


@contextmanager
def fresh_url(dsn: str) -> Iterator[str]:
    params = conninfo_to_dict(dsn)
    user, host = params.get("user", "postgres"), params.get("host", "127.0.0.1")
    port, dbname = params.get("port", "5432"), params.get("dbname", "test")
    password = f":{params['password']}" if params.get("password") else ""
    schema = f"chronik_w_{uuid.uuid4().hex[:12]}"
    try:
        yield f"postgresql://{user}{password}@{host}:{port}/{dbname}?schema={schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            drop = SQL("DROP SCHEMA IF EXISTS {} CASCADE")
            conn.execute(drop.format(Identifier(schema)))


def w1_gaps(url: str, scale: bench.Scale) -> list[float]:
    gaps: list[float] = []
    with ActorSystem.open(url) as system:
        for index in range(scale.sequential_runs + 1):  # run 0 warms up
            ref = system.spawn(
                stamped_steps, scale.sequential_steps, id=f"sequential-{index}"
            )
            stamps = ref.result(timeout=120)
            if index > 0:
                gaps.extend(b - a for a, b in itertools.pairwise(stamps))
    return gaps


HOST_NAME = "w4-host"  # both processes' in the restart rows


def w4_rounds(
    dsn: str, scale: bench.Scale, lease_ttl: float, host_name: str | None
) -> list[dict[str, float]]:
    """``scale.rounds`` rounds of W4, each on a fresh schema; their phases."""
    bench.compile_code()  # W4 times a new process, imports included
    recovered = []
    with tempfile.TemporaryDirectory(prefix="chronik-pg-w4-") as work:
        for index in range(scale.rounds):
            with fresh_url(dsn) as url:
                recovered.append(
                    bench.recovery(
                        Path(work) / f"round-{index}",
                        scale.recovery_runs,
                        url,
                        lease_ttl=lease_ttl,
                        dead_leases=functools.partial(leases_run_out, url),
                        host_name=host_name,
                    )
                )
    return recovered


def w2_rounds(dsn: str, scale: bench.Scale) -> bench.Concurrent:
    """W2 ``scale.rounds`` times, each on a fresh schema (as ``workflows.py``
    runs it on LMDB); the round of median throughput."""
    runs = []
    for _ in range(scale.rounds):
        with fresh_url(dsn) as url:
            runs.append(bench.concurrent(url, scale))  # type: ignore[arg-type]
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def leases_run_out(url: str) -> float:
    """When the last lease of the journal at ``url`` runs out (the killed host's:
    it held every partition), on the hosts' clock (``time.time()``)."""
    location = parse_location(url)
    assert isinstance(location, PostgresLocation), url
    datastore = location.datastore(pool_size=1, max_overflow=0)
    try:
        leases = Leases(PostgresLeaseStorage(datastore)).read()
    finally:
        datastore.close()
    return max(lease.expires_at for lease in leases.values())


def rows(
    gaps: list[float],
    w2: bench.Concurrent,
    w3: bench.Signalled,
    w4: list[dict[str, float]],
    w4_new: list[dict[str, float]],
    *,
    scale: bench.Scale,
    peers: bench.Peers | None,
    lease_ttl: float,
) -> list[bench.Row]:
    def peer(metric: str) -> tuple[float | None, str]:
        return (None, "-") if peers is None else peers.best(metric)

    steps = scale.concurrent_runs * scale.concurrent_steps
    w1_ref, w1_name = peer("w1_gap")
    w2_ref, w2_name = peer("w2_steps_per_s")
    cpu_ref, cpu_name = peer("w2_cpu_per_step")
    w3_ref, w3_name = peer("w3_median")
    w4_ref, w4_name = peer("w4_total")
    return [
        bench.Row(
            "PostgreSQL W1: per-step gap, median, vs DBOS on the same server",
            statistics.median(gaps),
            "s",
            w1_ref,
            w1_name,
            bench.Target(1, at_least=False, on_ratio=True),
        ),
        bench.Row(
            f"PostgreSQL W2: {scale.concurrent_runs} runs x {scale.concurrent_steps}"
            " steps started one by one: steps/s vs DBOS",
            steps / w2.seconds,
            "steps/s",
            w2_ref,
            w2_name,
            bench.Target(3, at_least=True, on_ratio=True),
        ),
        bench.Row(
            "PostgreSQL W2: CPU per step (this process; the server's not counted)",
            w2.cpu / steps,
            "s",
            cpu_ref,
            cpu_name,
            None,
        ),
        bench.Row(
            "PostgreSQL W3: signal -> completion, median, vs DBOS",
            statistics.median(w3.to_result),
            "s",
            w3_ref,
            w3_name,
            None,
        ),
        bench.Row(
            f"PostgreSQL W4: SIGKILL, {scale.recovery_runs} runs waiting: the host "
            "restarted under its name -> all completed, vs DBOS",
            statistics.median(r["total"] for r in w4),
            "s",
            w4_ref,
            w4_name,
            bench.Target(1, at_least=False, on_ratio=True),
        ),
        bench.Row(
            "PostgreSQL W4, a new host of no name instead: waits for the killed "
            f"host's leases (TTL {lease_ttl:g} s)",
            statistics.median(r["total"] for r in w4_new),
            "s",
            w4_ref,
            w4_name,
            None,
        ),
    ]


def w4_notes(
    w4: list[dict[str, float]],
    w4_new: list[dict[str, float]],
    scale: bench.Scale,
    ttl: float,
) -> list[str]:
    return [
        "W4 restarted: " + bench.recovery_note(w4, scale.recovery_runs),
        f"W4 restarted: both processes open the journal with host_name={HOST_NAME!r} "
        '(as DBOS restarts an executor under its id, "local" by default): the new '
        "life takes the killed life's leases at its first lease round, in its open.",
        "W4 new host: " + bench.recovery_note(w4_new, scale.recovery_runs),
        "W4 new host: no presence lock tells a PostgreSQL host that another is dead "
        "(hosts may be on other machines), so a host of another (or no) name takes "
        "none of the killed host's partitions at its open: their leases hold until "
        f"dead_leases (the killed host's last renewal + the lease TTL, {ttl:g} s; "
        f"renewals every TTL/3 = {ttl / 3:.2f} s), and its next lease round after "
        "that (every TTL/3 from its open) takes them (took_over); between "
        f"{2 * ttl / 3:.2f} and {4 * ttl / 3:.2f} s after the kill for the "
        "take-over alone.",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--dsn", default=os.environ.get("CHRONIK_PG_DSN") or DEFAULT_DSN
    )
    parser.add_argument("--peers", type=Path, help="the peer harness's results")
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=DEFAULT_LEASE_TTL,
        help="W4: both processes' lease_ttl, seconds (default chronik's, "
        f"{DEFAULT_LEASE_TTL:g}): about how long a killed host's runs wait",
    )
    args = parser.parse_args(argv)
    if not args.lease_ttl > 0:
        parser.error(f"--lease-ttl {args.lease_ttl:g} must be seconds > 0")
    scale = bench.QUICK if args.quick else bench.DEFAULT
    peers = bench.read_peers(args.peers) if args.peers else None
    began = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with fresh_url(args.dsn) as url:
        gaps = w1_gaps(url, scale)
    w2 = w2_rounds(args.dsn, scale)
    with fresh_url(args.dsn) as url:
        w3 = bench.signalled(url, scale)  # type: ignore[arg-type]
    w4 = w4_rounds(args.dsn, scale, args.lease_ttl, HOST_NAME)
    w4_new = w4_rounds(args.dsn, scale, args.lease_ttl, None)
    print(f"PostgreSQL at {args.dsn}, {began}; peers: {args.peers or '-'}\n")
    table = rows(
        gaps, w2, w3, w4, w4_new, scale=scale, peers=peers, lease_ttl=args.lease_ttl
    )
    print("\n".join(bench.table(table)))
    print()
    notes = w4_notes(w4, w4_new, scale, args.lease_ttl)
    print("\n".join(f"* {note}" for note in notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
