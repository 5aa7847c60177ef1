"""W2 on PostgreSQL, chronik and DBOS interleaved: one run each, pair after pair.

    .venv/bin/python benchmarks/pg_w2_pairs.py --pairs 8

W2 (``benchmarks/workflows.py``'s: 500 runs of 3 steps started one by one, first
start to last completion) lasts about a second on each side, so a burst of load
from another tenant of the machine can halve one side's figure in a sitting of
``pg_workflows.py``, where DBOS's three repetitions and chronik's three rounds run
minutes apart. Here each pair runs DBOS's W2 (the peer harness's own driver,
``bench_dbos.py --workloads w2``, its system database on the same server) and
then chronik's, on a fresh database and a fresh schema of the same server; the
ratio is taken pair by pair, and the table gives each pair and the median.

Needs the peer harness (``--harness``, default ``../shared/peers`` beside the
repository) set up once with ``PEERS=dbos bash run_all.sh`` (its DBOS venv in
``--scratch``, default ``$PEERS_SCRATCH`` or ``/tmp/peers``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
sys.path.insert(0, str(_REPO))
from benchmarks import pg_workflows as pg  # noqa: E402
from benchmarks import workflows as bench  # noqa: E402

# isort: split

from psycopg.conninfo import conninfo_to_dict  # noqa: E402

W2_TARGET = bench.Target(3.0, at_least=True, on_ratio=True)  # the issue's: >= 3x DBOS


def dbos_w2(harness: Path, scratch: Path, server_url: str) -> float:
    """Steps/s of one run of the peer harness's DBOS W2 on ``server_url``."""
    python = scratch / "venv-dbos" / "bin" / "python"
    driver = harness / "dbos" / "bench_dbos.py"
    for needed in (python, driver):
        if not needed.exists():
            raise SystemExit(
                f"{needed} is missing: set the peer harness up once with "
                f"`PEERS=dbos bash {harness / 'run_all.sh'}` (see --help)"
            )
    with tempfile.TemporaryDirectory() as results:
        env = dict(
            os.environ,
            PEERS_RESULTS=results,
            PEERS_SCRATCH=str(scratch),
            PEER_DBOS_PG_URL=server_url,
        )
        command = [str(python), str(driver), "--workloads", "w2", "--tag", "dbos"]
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"DBOS's W2 failed:\n{done.stderr[-2000:]}")
        data = json.loads((Path(results) / "dbos.json").read_text())
    return float(data["W2"]["steps_per_s"])


def chronik_w2(dsn: str, scale: bench.Scale) -> float:
    with pg.fresh_url(dsn) as url:
        run = bench.concurrent(url, scale)  # type: ignore[arg-type]
    return scale.concurrent_runs * scale.concurrent_steps / run.seconds


def server_url_of(dsn: str) -> str:
    """The DBOS driver's form: ``postgresql://user[:password]@host:port``."""
    params = conninfo_to_dict(dsn)
    user, host = params.get("user", "postgres"), params.get("host", "127.0.0.1")
    password = f":{params['password']}" if params.get("password") else ""
    return f"postgresql://{user}{password}@{host}:{params.get('port', '5432')}"


def rows(pairs: Sequence[tuple[float, float]]) -> list[bench.Row]:
    made = [
        bench.Row(
            f"pair {n}: W2 steps/s vs DBOS's run just before",
            chronik,
            "steps/s",
            dbos,
            "dbos",
            None,
        )
        for n, (dbos, chronik) in enumerate(pairs, start=1)
    ]
    ratios = [chronik / dbos for dbos, chronik in pairs]
    median = statistics.median(ratios)
    made.append(
        bench.Row(
            "W2: the median of the pairs' ratios (chronik: the median steps/s)",
            statistics.median(chronik for _, chronik in pairs),
            "steps/s",
            statistics.median(chronik for _, chronik in pairs) / median,
            "dbos, at the median ratio",
            W2_TARGET,
            detail=f"ratios {min(ratios):.2f}-{max(ratios):.2f}x",
        )
    )
    return made


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument(
        "--dsn", default=os.environ.get("CHRONIK_PG_DSN") or pg.DEFAULT_DSN
    )
    parser.add_argument(
        "--harness", type=Path, default=_REPO.parent / "shared" / "peers"
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=Path(os.environ.get("PEERS_SCRATCH") or "/tmp/peers"),
    )
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error(f"--pairs {args.pairs} must be at least 1")
    server = server_url_of(args.dsn)
    pairs = []
    for _ in range(args.pairs):
        dbos = dbos_w2(args.harness, args.scratch, server)
        pairs.append((dbos, chronik_w2(args.dsn, bench.DEFAULT)))
    print(f"PostgreSQL at {args.dsn}; {args.pairs} pairs, DBOS first in each\n")
    print("\n".join(bench.table(rows(pairs))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
