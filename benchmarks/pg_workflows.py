"""W1-W3 on a PostgreSQL journal, against DBOS Transact on the same server.

    .venv/bin/python benchmarks/pg_workflows.py --peers /tmp/peer-pg   # + DBOS
    .venv/bin/python benchmarks/pg_workflows.py --quick                # smoke run

The workloads are ``benchmarks/workflows.py``'s (the peer harness's definitions),
each on a fresh schema of the server (``--dsn``, else ``CHRONIK_PG_DSN``, else
127.0.0.1:5432 as postgres, database ``test``), dropped afterwards. W1: 10 runs of
20 sequential stamped steps after a warm-up, the median of the gaps between stamps;
W2: 500 runs of 3 steps started one by one, first start to last completion, CPU of
this process per step; W3: signal to completion after the peers' seeded pauses.
``--peers DIR`` reads the peer harness's JSON files of the same sitting (run it
with ``PEERS=dbos PEER_DBOS_PG_URL=postgresql://postgres@127.0.0.1:5432``) and
states the issue's targets against DBOS: W2 steps/s >= 3x, W1 per step <= DBOS.
W4 (SIGKILL and recovery) is not measured on PostgreSQL here yet.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
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

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


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


def rows(
    gaps: list[float],
    w2: bench.Concurrent,
    w3: bench.Signalled,
    scale: bench.Scale,
    peers: bench.Peers | None,
) -> list[bench.Row]:
    def peer(metric: str) -> tuple[float | None, str]:
        return (None, "-") if peers is None else peers.best(metric)

    steps = scale.concurrent_runs * scale.concurrent_steps
    w1_ref, w1_name = peer("w1_gap")
    w2_ref, w2_name = peer("w2_steps_per_s")
    cpu_ref, cpu_name = peer("w2_cpu_per_step")
    w3_ref, w3_name = peer("w3_median")
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
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--dsn", default=os.environ.get("CHRONIK_PG_DSN") or DEFAULT_DSN
    )
    parser.add_argument("--peers", type=Path, help="the peer harness's results")
    args = parser.parse_args(argv)
    scale = bench.QUICK if args.quick else bench.DEFAULT
    peers = bench.read_peers(args.peers) if args.peers else None
    began = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with fresh_url(args.dsn) as url:
        gaps = w1_gaps(url, scale)
    with fresh_url(args.dsn) as url:
        w2 = bench.concurrent(url, scale)  # type: ignore[arg-type]
    with fresh_url(args.dsn) as url:
        w3 = bench.signalled(url, scale)  # type: ignore[arg-type]
    print(f"PostgreSQL at {args.dsn}, {began}; peers: {args.peers or '-'}\n")
    print("\n".join(bench.table(rows(gaps, w2, w3, scale, peers))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
