"""``chronik stats``: the journal's figures and the counters its systems publish.

Everything is read with the journal open read-only, so it works while another
process runs a system on it: table sizes (kept by LMDB), runs by status (from
the log's start and end events only) and the documents each system publishes
every second it is busy (``journal.read_stats``).

A PostgreSQL journal gives the same, read in transactions that are rolled
back: its tables' counts and the space its schema's tables take on the server
(``journal._pg_stats``; no file size, which has no meaning there), and the
documents of its ``chronik_stats`` table.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

import click
from rich import box
from rich.console import Console
from rich.table import Table

from actors._backend import PostgresBackend
from actors.cli._app import cli, echo_json, fail, json_option, options
from aggregates import Cancelled, Completed, Failed, RunStatus, Started
from journal import (
    AnyJournalReader,
    Journal,
    JournalPathError,
    JournalReader,
    JournalSettings,
    LmdbLocation,
    PostgresLocation,
    journal_figures,
    open_reader,
    parse_location,
    read_stats,
)
from journal._pg_stats import PostgresStats, postgres_figures

__all__ = ["stats"]

_STATUS_OF: Final = {
    Started.TOPIC: RunStatus.RUNNING,
    Completed.TOPIC: RunStatus.COMPLETED,
    Failed.TOPIC: RunStatus.FAILED,
    Cancelled.TOPIC: RunStatus.CANCELLED,
}
_CLOSED_SHOWN: Final = 3  # closed hosts shown without --all: the latest few
_FIX: Final = "pass -j/--journal DIR (or set CHRONIK_JOURNAL) to a journal directory"
_ROWS: Final = (
    ("runs started", "runs_started"),
    ("runs completed", "runs_completed"),
    ("runs failed", "runs_failed"),
    ("runs cancelled", "runs_cancelled"),
    ("runs broken off", "runs_broken_off"),
    ("live runs", "live_runs"),
    ("activations", "activations"),
    ("replays", "replays"),
    ("events replayed", "events_replayed"),
    ("passivations", "passivations"),
    ("run actor restarts", "run_restarts"),
    ("step attempts", "step_attempts"),
    ("steps completed", "steps_completed"),
    ("step retries", "step_retries"),
    ("steps failed", "steps_failed"),
    ("timers fired", "timers_fired"),
    ("signals received", "signals_received"),
)


@cli.command()
@json_option()
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help=f"Every host that published (else running ones and the {_CLOSED_SHOWN} "
    "latest closed).",
)
@click.pass_context
def stats(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """The journal's figures and each host's published counters."""
    path = options(ctx).journal
    location = parse_location(path)  # a bad URL: one line, nothing written
    if isinstance(location, PostgresLocation):
        figures, documents = _read_postgres(path, location)
    else:
        figures, documents = _read_lmdb(location)
    hosts = _hosts(documents, time.time())
    shown = hosts if show_all else _latest(hosts)
    if as_json:
        echo_json({"journal": figures, "hosts": shown})
        return
    console = _console()
    console.print(_journal_table(figures))
    if not hosts:
        console.print("no system has published stats to this journal yet")
        return
    console.print(_hosts_table(shown))
    hidden = len(hosts) - len(shown)
    if hidden:
        console.print(f"{hidden} older closed host(s) not shown: --all shows them")


_Read = tuple[dict[str, Any], dict[str, dict[str, Any]]]  # figures, documents


def _read_lmdb(location: LmdbLocation) -> _Read:
    path = location.path
    if not os.path.isdir(path):
        fail(f"journal {path!r} does not exist", _FIX)
    if not os.path.exists(os.path.join(path, "data.mdb")):
        fail(f"{path!r} holds no journal (no data.mdb)", _FIX)
    try:
        journal = Journal.open(JournalSettings(path=path), readonly=True)
    except JournalPathError as error:
        fail(f"journal {path!r} {error.problem}", _FIX)
    try:
        with JournalReader(path) as reader:
            figures = journal_figures(journal).as_dict()
            figures["runs"] = _runs(reader)
            return figures, read_stats(journal)
    finally:
        journal.close()


def _read_postgres(path: str, location: PostgresLocation) -> _Read:
    """The same as ``_read_lmdb`` gives, from a PostgreSQL journal; a server
    that cannot be reached and a schema with no journal are one line each."""
    where = location.display
    try:
        PostgresBackend(location).check_exists()
    except JournalPathError as error:
        fail(f"journal {where!r} {error.problem}", error.remedy)
    datastore = location.datastore(pool_size=1, max_overflow=0)
    try:
        with open_reader(path) as reader:
            figures = postgres_figures(datastore, where).as_dict()
            figures["runs"] = _runs(reader)
        return figures, read_stats(PostgresStats(datastore, where))
    finally:
        datastore.close()


def _runs(reader: AnyJournalReader) -> dict[str, int]:
    """Runs by status, from the log's start and end events alone."""
    status: dict[str, RunStatus] = {}
    for notification in reader.notifications(topics=list(_STATUS_OF)):
        status[str(notification.originator_id)] = _STATUS_OF[notification.topic]
    counts = Counter(status.values())
    found = {s.value: counts.get(s, 0) for s in _STATUS_OF.values()}
    return {"total": len(status), **found}


def _hosts(documents: Mapping[str, dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Each published document with its key, age and state, newest first."""
    here = socket.gethostname()
    hosts = []
    for key, document in documents.items():
        updated = float(document.get("updated_at", 0.0))
        state = "closed" if document.get("closed") else "running"
        pid = int(document.get("pid", 0))
        if state == "running" and document.get("hostname") == here and not _alive(pid):
            state = "gone"  # its process ended without closing the system
        hosts.append(
            {"key": key, **document, "state": state, "age": round(now - updated, 3)}
        )
    return sorted(hosts, key=lambda host: -float(host.get("updated_at", 0.0)))


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _latest(hosts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    closed = [host for host in hosts if host["state"] == "closed"]
    keep = {host["key"] for host in closed[:_CLOSED_SHOWN]}
    return [host for host in hosts if host["state"] != "closed" or host["key"] in keep]


# -- tables --------------------------------------------------------------------


def _console() -> Console:
    terminal = sys.stdout.isatty()
    return Console(
        markup=False,
        emoji=False,
        highlight=terminal,
        width=None if terminal else 10_000,  # piped: never cut a row
        soft_wrap=not terminal,
    )


def _journal_table(figures: Mapping[str, Any]) -> Table:
    table = Table("journal", "", box=box.SIMPLE_HEAD, pad_edge=False)
    runs = figures["runs"]
    by_status = ", ".join(f"{runs[s.value]} {s.value}" for s in _STATUS_OF.values())
    table.add_row("path", str(figures["path"]))
    table.add_row("events", f"{figures['events']:,}")
    table.add_row("notifications", f"{figures['notifications']:,}")
    table.add_row("snapshots", f"{figures['snapshots']:,}")
    table.add_row("runs", f"{runs['total']:,} ({by_status})")
    disk = _bytes(figures["disk_bytes"])
    if "file_bytes" in figures:  # LMDB
        table.add_row(
            "data.mdb", f"{disk} on disk ({_bytes(figures['file_bytes'])} file)"
        )
    else:  # PostgreSQL: the schema's tables, with their indexes
        count = len(figures["tables"])
        table.add_row("tables", f"{disk} on the server ({count} tables, indexes too)")
    return table


def _hosts_table(hosts: list[dict[str, Any]]) -> Table:
    table = Table("counter", box=box.SIMPLE_HEAD, pad_edge=False)
    for host in hosts:
        heading = f"{host.get('hostname', '?')} pid {host.get('pid', '?')}"
        status = f"{host['state']}, last update {_ago(host['age'])} ago"
        table.add_column(f"{heading}\n{status}", justify="right")
    counters = [host.get("stats", {}) for host in hosts]
    for label, name in _ROWS:
        table.add_row(label, *(_count(c.get(name)) for c in counters))
    commits = [c.get("commits", {}) for c in counters]
    table.add_row("commits", *(_count(c.get("groups")) for c in commits))
    table.add_row("writes committed", *(_count(c.get("writes")) for c in commits))
    table.add_row("largest commit", *(_count(c.get("max_group")) for c in commits))
    table.add_row("writes per commit", *(_mean(c.get("mean_group")) for c in commits))
    table.add_row("commit sizes", *(_histogram(c.get("histogram")) for c in commits))
    return table


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _mean(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _histogram(value: Any) -> str:
    if not isinstance(value, Mapping):
        return "-"
    return " ".join(f"{bucket}:{count}" for bucket, count in value.items() if count)


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{count} B"
