"""Which PostgreSQL server the tests use (issue 14).

In order: ``CHRONIK_PG_DSN`` if set; else a server answering on
127.0.0.1:5432 (user postgres, database test, as on CI); else a throwaway
server started from installed PostgreSQL binaries (``initdb`` in a temporary
directory, on a free port, stopped and removed at the end of the session); else
none, with the reason, and the PostgreSQL tests skip saying it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs

from journal._location import connection_settings

__all__ = ["Server", "connection_settings", "find_server", "journal_url"]

_LOCAL = "postgresql://postgres@127.0.0.1:5432/test"
_BIN_DIRS = (
    "/usr/local/bin",
    *(str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"))),
)


@attrs.frozen
class Server:
    """A server to test against, or why there is none (``dsn`` None)."""

    dsn: str | None
    origin: str  # where it came from, or why there is none


def _answers(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout):
        return True
    return False


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in _BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as ``postgres``."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        msg = "running as root with no runuser to start PostgreSQL as postgres"
        raise RuntimeError(msg)
    return [runuser, "-u", "postgres", "--", *command]


@contextlib.contextmanager
def _throwaway() -> Iterator[Server]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        yield Server(None, "no server on 127.0.0.1:5432 and no initdb/pg_ctl installed")
        return
    directory = Path(tempfile.mkdtemp(prefix="chronik-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    data, port = directory / "data", _free_port()
    started = False
    try:
        subprocess.run(
            _as_server_user(
                [
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            _as_server_user(
                [
                    pg_ctl,
                    "-D",
                    str(data),
                    "-o",
                    f"-p {port} -k {directory} -c listen_addresses=127.0.0.1",
                    "-l",
                    str(directory / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        started = True
        deadline = time.monotonic() + 30
        while not _answers("127.0.0.1", port):
            if time.monotonic() > deadline:
                yield Server(None, f"a throwaway server on port {port} never answered")
                return
            time.sleep(0.1)
        yield Server(
            f"postgresql://postgres@127.0.0.1:{port}/postgres",
            f"a throwaway server (initdb in {directory}, port {port})",
        )
    except (subprocess.SubprocessError, OSError, RuntimeError) as error:
        yield Server(None, f"could not start a throwaway server: {error!r}")
    finally:
        if started:
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "stop"]),
                check=False,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def find_server() -> Iterator[Server]:
    """The server for this test session (see the module's docstring)."""
    dsn = os.environ.get("CHRONIK_PG_DSN")
    if dsn:
        yield Server(dsn, "CHRONIK_PG_DSN")
        return
    if _answers("127.0.0.1", 5432):
        yield Server(_LOCAL, "the server on 127.0.0.1:5432")
        return
    with _throwaway() as server:
        yield server


@contextlib.contextmanager
def journal_url(dsn: str, prefix: str = "chronik_t") -> Iterator[str]:
    """A ``postgresql://`` journal URL on the server of ``dsn`` naming a fresh
    schema of its own, dropped afterwards."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    settings = connection_settings(dsn)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    password = f":{settings['password']}" if settings["password"] else ""
    try:
        yield (
            f"postgresql://{settings['user']}{password}@{settings['host']}:"
            f"{settings['port']}/{settings['dbname']}?schema={schema}"
        )
    finally:
        with psycopg.connect(autocommit=True, **settings) as conn:  # type: ignore[arg-type]
            drop = SQL("DROP SCHEMA IF EXISTS {} CASCADE")
            conn.execute(drop.format(Identifier(schema)))
