"""Read-only commands: list, show, history, state, export and verify.

``list`` and ``show`` read through ``actors.Client``, the others through
``actors.Audit``; neither writes or takes the write lock, so they run while
another process runs the system on the same journal. Tables go to stdout (rich
on a terminal, plain aligned columns when piped), progress bars to stderr (only
on a terminal). With ``--json`` each prints one JSON document instead: exact,
tagged values (as history files hold them) for ``history``, ``state`` and
``export``; plain ones (``_app.plain``) for ``list``, ``show`` and ``verify``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final, NoReturn, TypeVar

import attrs
import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from actors._audit import Audit, AuditReport, VerifyStage, VersionOutOfRangeError
from actors._client import Client
from actors._definitions import resolve_workflow
from actors._errors import UnknownRunError, UnknownWorkflowError
from actors._history_file import History, _to_json
from actors._replayer import ReplayStatus
from actors.cli._app import (
    EXIT_VERIFY_FAILED,
    FIX_JOURNAL,
    cli,
    describe,
    echo_json,
    fail,
    json_option,
    one_line,
    open_client,
    options,
    read_run,
)
from actors.cli._modules import (
    answer_as_main,
    cli_converters,
    converters_in,
    import_spec,
)
from aggregates import CommandRecord, RunEvent, RunStatus, WorkflowRun
from journal import JournalPathError

__all__ = ["export", "history", "list_runs", "show", "state", "verify"]

_STATUSES: Final = ", ".join(status.value for status in RunStatus)
_BESIDE: Final = frozenset({"originator_id", "originator_version", "timestamp"})
_CELL: Final = 60  # the widest value shown in a table cell
_LIST_HINT: Final = "list the runs with `chronik list`"
_T = TypeVar("_T")


# -- commands ------------------------------------------------------------------


@cli.command("list")
@click.option("--status", metavar="S", help=f"Only runs of status S ({_STATUSES}).")
@click.option("--workflow", metavar="NAME", help="Only runs of workflow NAME.")
@click.option(
    "--since",
    metavar="TIME",
    help="Only runs started at or after TIME (ISO 8601; UTC without an offset).",
)
@click.option("--until", metavar="TIME", help="Only runs started before TIME.")
@click.option(
    "--limit", type=click.IntRange(min=0), metavar="N", help="At most the first N."
)
@json_option("Print the runs as one JSON array.")
@click.pass_context
def list_runs(
    ctx: click.Context,
    *,
    status: str | None,
    workflow: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """The runs, in the order they started."""
    wanted = _status(status)
    start, end = _time("--since", since), _time("--until", until)
    if start is not None and end is not None and end <= start:
        fail(
            f"--until {until} is not after --since {since}",
            "pass an --until later than --since",
        )
    with _client(ctx) as client:
        runs = client.list(
            status=wanted, workflow=workflow, since=start, until=end, limit=limit
        )
    if as_json:
        echo_json(runs)
        return
    columns = ("id", "workflow", "status", "started", "ended", "events", "parent")
    rows = [
        (
            run.workflow_id,
            run.workflow,
            run.status.value,
            _when(run.started_at),
            _when(run.ended_at),
            str(run.version),
            run.parent_id or "",
        )
        for run in runs
    ]
    _print_table(columns, rows)
    click.echo(f"{len(runs)} run{'' if len(runs) == 1 else 's'}")


@cli.command()
@click.argument("run_id", metavar="ID")
@json_option("The run as `state --json` gives it (and ended_at), values plain.")
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """One run: what it is, how it ended, and each command it issued."""
    with _client(ctx) as client:
        try:
            run = read_run(client, run_id)
        except UnknownRunError:
            _unknown(run_id, client.path)
    if as_json:
        ended = run.modified_on if run.is_finished else None
        echo_json({**_state_document(run, run.version), "ended_at": ended})
        return
    _print_fields(_fields(run))
    _print_commands(run.commands)


@cli.command()
@click.argument("run_id", metavar="ID")
@json_option("A chronik-history/1 document.")
@click.pass_context
def history(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """The events of one run, oldest first."""
    with _open(ctx) as audit:
        found = _known(audit, run_id, lambda: audit.history(run_id))
    if as_json:
        document = History(run_id, found, audit.converters).to_document()
        click.echo(json.dumps(document, indent=2, allow_nan=False))
        return
    rows = [
        (
            str(event.originator_version),
            _when(event.timestamp),
            type(event).__name__,
            _event_data(event),
        )
        for event in found
    ]
    _print_table(("version", "time", "event", "data"), rows)


@cli.command()
@click.argument("run_id", metavar="ID")
@click.option("--at", "at", type=int, metavar="N", help="As of version N (1 = start).")
@json_option("The state as JSON.")
@click.pass_context
def state(ctx: click.Context, run_id: str, at: int | None, as_json: bool) -> None:
    """The state of one run, now or as of version N (time travel)."""
    with _open(ctx) as audit:
        last = _known(audit, run_id, lambda: len(audit.history(run_id)))
        run = _state(audit, run_id, at)
    if as_json:
        document = _state_document(run, last)
        types = {converter.type: converter for converter in audit.converters}
        data = _to_json(document, "state", types)
        click.echo(json.dumps(data, indent=2, allow_nan=False))
        return
    fields = _fields(run)
    fields["version"] = f"{run.version} of {last}"
    fields["as of"] = _when(run.modified_on)
    _print_fields(fields)
    _print_commands(run.commands)
    _print_pending(run)


@cli.command()
@click.option("--from", "start", type=int, default=1, metavar="N", help="From N on.")
@click.option("--to", "stop", type=int, metavar="N", help="Up to N (default: the end).")
@json_option("One JSON array of the lines' objects (still constant memory).")
@click.pass_context
def export(ctx: click.Context, start: int, stop: int | None, as_json: bool) -> None:
    """The log as JSON lines: position, stream, version, topic, timestamp, state."""
    if start < 1:
        fail(f"--from {start} is not a log position", "positions start at 1")
    if stop is not None and stop < start:
        fail(f"--to {stop} is before --from {start}", "pass --to N with N >= --from")
    with _open(ctx) as audit, _quiet_broken_pipe():
        write = _write_array if as_json else _write_lines
        write(audit.export(start, stop))
        sys.stdout.flush()


@cli.command()
@click.argument("run_id", metavar="[ID]", required=False)
@click.option(
    "--module",
    "-m",
    "modules",
    multiple=True,
    metavar="M",
    help="Import M (a module or a .py file) for its workflows first; repeatable.",
)
@json_option("Print the report as one JSON document (exit codes as without).")
@click.pass_context
def verify(
    ctx: click.Context, run_id: str | None, modules: tuple[str, ...], as_json: bool
) -> None:
    """Check the hash chains, then replay the runs against the current code."""
    imported = [import_spec(module) for module in modules]
    for module in imported:
        answer_as_main(module)
    with _open(ctx, converters_in(imported)) as audit:
        names = _known(audit, run_id, lambda: _workflow_names(audit, run_id))
        _resolve_workflows(names)
        with _progress_bar() as progress, _quiet_runtime():
            report = audit.verify(run_id, progress=progress)
    if as_json:
        echo_json(_report_document(report))
    else:
        click.echo(report.summary())
    _fail_unless_ok(report)


# -- opening and errors ------------------------------------------------------------


@contextlib.contextmanager
def _open(ctx: click.Context, converters: Sequence[Any] = ()) -> Iterator[Audit]:
    path = options(ctx).journal
    given = [*cli_converters(ctx), *converters]
    try:
        audit = Audit(path, converters=given)
    except JournalPathError as error:
        fail(f"journal {path!r} {error.problem}", FIX_JOURNAL)
    with audit:
        yield audit


@contextlib.contextmanager
def _client(ctx: click.Context) -> Iterator[Client]:
    path = options(ctx).journal
    with open_client(path, cli_converters(ctx)) as client:
        yield client


def _known(audit: Audit, run_id: str | None, read: Callable[[], _T]) -> _T:
    try:
        return read()
    except UnknownRunError:
        _unknown(run_id, audit.path)


def _unknown(run_id: str | None, path: str) -> NoReturn:
    fail(f"no run has id {run_id!r} in journal {path!r}", _LIST_HINT)


def _state(audit: Audit, run_id: str, at: int | None) -> WorkflowRun:
    try:
        return _known(audit, run_id, lambda: audit.state(run_id, at))
    except VersionOutOfRangeError as error:
        problem = f"--at {at} is out of range: run {run_id!r} has versions 1 to "
        fail(f"{problem}{error.last}", f"pass --at N with 1 <= N <= {error.last}")


def _status(status: str | None) -> RunStatus | None:
    if status is None:
        return None
    try:
        return RunStatus(status.lower())
    except ValueError:
        fail(f"--status {status!r} is not a run status", f"use one of {_STATUSES}")


def _write_lines(documents: Iterable[dict[str, Any]]) -> None:
    for document in documents:
        sys.stdout.write(json.dumps(document, allow_nan=False) + "\n")


def _write_array(documents: Iterable[dict[str, Any]]) -> None:
    """One JSON array, an object a line, written as they come."""
    sys.stdout.write("[")
    for n, document in enumerate(documents):
        sys.stdout.write(
            ("," if n else "") + "\n" + json.dumps(document, allow_nan=False)
        )
    sys.stdout.write("\n]\n")


def _time(option: str, text: str | None) -> datetime | None:
    """``text`` as an aware datetime; without an offset it is UTC, as the
    journal's times are."""
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        fail(
            f"{option} {text!r} is not an ISO 8601 time",
            "pass a date or a time, e.g. 2026-01-31, 2026-01-31T09:30 (UTC) or "
            "2026-01-31T09:30+01:00",
        )
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@contextlib.contextmanager
def _quiet_broken_pipe() -> Iterator[None]:
    """``chronik export | head`` ends quietly when ``head`` has read enough."""
    try:
        yield
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so exit's flush cannot fail again


# -- verify: workflows and the report -------------------------------------------------


def _workflow_names(audit: Audit, run_id: str | None) -> set[str]:
    if run_id is not None:
        return {audit.run(run_id).workflow}
    return {summary.workflow for summary in audit.runs()}


def _resolve_workflows(names: Iterable[str]) -> None:
    """Fail unless every workflow name resolves. A script run as ``python
    app.py`` records its workflows as ``__main__:fn``: ``--module app`` gives
    them the code of ``app.fn``."""
    missing: list[str] = []
    for name in sorted(names):
        try:
            resolve_workflow(name)
        except UnknownWorkflowError:
            missing.append(name)
    if missing:
        fix = "pass --module M (a module or .py file) that defines it"
        if any(name.startswith("__main__:") for name in missing):
            fix += " (a script run as `python app.py` names them __main__:NAME)"
        fail(f"cannot find the code of workflow {', '.join(missing)}", fix)


@contextlib.contextmanager
def _quiet_runtime() -> Iterator[None]:
    """The replay drives the runtime's own actor, which logs each failed run it
    ends; the report already says what matters."""
    logger = logging.getLogger("chronik")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _progress_bar() -> Iterator[Any]:
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )
    tasks: dict[VerifyStage, Any] = {}

    def advance(stage: VerifyStage, done: int, total: int | None) -> None:
        if stage not in tasks:
            label = "hash chains" if stage is VerifyStage.CHAIN else "replay runs"
            tasks[stage] = bar.add_task(label, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield advance


def _report_document(report: AuditReport) -> dict[str, Any]:
    """What ``verify --json`` prints: the verdict, the chain check, the replay."""
    chain, replay = report.chain, report.replay
    failures = [
        {
            "workflow_id": result.workflow_id,
            "workflow": result.workflow,
            "status": result.status,
            "error": None if result.error is None else describe(result.error),
        }
        for result in replay.failures
    ]
    return {
        "ok": report.ok,
        "problems": report.problems,
        "journal": {
            "ok": chain.ok,
            "events": chain.events,
            "notifications": chain.notifications,
            "max_notification_id": chain.max_notification_id,
            "head": chain.head,
            "first_bad": chain.first_bad,
            "problems": chain.problems,
        },
        "replay": {
            "ok": replay.ok,
            "runs": len(replay.results),
            "counts": {status: replay.count(status) for status in ReplayStatus},
            "failures": failures,
        },
    }


def _fail_unless_ok(report: AuditReport) -> None:
    if report.ok:
        return
    first = report.first_bad
    where = "" if first is None else f", first bad position {first}"
    count = len(report.problems)
    problem = f"verification failed: {count} problem{'' if count == 1 else 's'}{where}"
    fix = (
        "restore the journal from a copy taken before that position"
        if first is not None
        else "keep the old workflow code for these runs, or guard the change "
        "with ctx.patched()"
    )
    fail(problem, fix, exit_code=EXIT_VERIFY_FAILED)


# -- rendering -------------------------------------------------------------------------


def _print_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], *, header: bool = True
) -> None:
    """A rich table on a terminal; plain aligned columns when piped (as fast
    for thousands of rows as for ten, and easy to grep)."""
    if sys.stdout.isatty():
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, show_header=header)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console(markup=False, emoji=False).print(table)
        return
    rule = ["-" * len(column) for column in columns]
    lines = [columns, rule, *rows] if header else rows
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    for line in lines:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _when(at: datetime | None) -> str:
    return "" if at is None else at.isoformat(sep=" ", timespec="seconds")


def _short(value: Any) -> str:
    text = one_line(repr(value))
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def _fields(run: WorkflowRun) -> dict[str, str]:
    fields = {
        "id": run.id,
        "workflow": run.name,
        "status": run.status.value,
        "started": _when(run.started_at),
        "ended": _when(run.modified_on) if run.is_finished else "",
        "version": str(run.version),
        "parent": run.parent_id or "",
        "args": one_line(repr(list(run.args))),
    }
    if run.kwargs:
        fields["kwargs"] = one_line(repr(run.kwargs))
    if run.status is RunStatus.COMPLETED:
        fields["result"] = one_line(repr(run.result))
    if run.error is not None:
        fields["error"] = str(run.error)
    if run.cancel_reason is not None:
        fields["cancel"] = run.cancel_reason
    waiting = ", ".join(f"{c.seq}: {c.command}" for c in run.open_commands)
    if waiting:
        fields["waiting on"] = waiting
    return fields


def _print_fields(fields: dict[str, str]) -> None:
    _print_table(("field", "value"), list(fields.items()), header=False)


def _print_commands(commands: Iterable[CommandRecord]) -> None:
    rows = []
    for record in commands:
        outcome = record.outcome
        if outcome is None:
            kind = "open" if not record.attempts else f"open ({record.attempts} failed)"
            shown = "" if record.fire_at is None else f"until {_when(record.fire_at)}"
        else:
            kind = outcome.kind.value
            shown = str(outcome.error) if outcome.error else _short(outcome.value)
        issued = _when(record.issued_at)
        rows.append((str(record.seq), str(record.command), issued, kind, shown))
    click.echo()
    _print_table(("seq", "command", "issued", "outcome", "value"), rows)


def _print_pending(run: WorkflowRun) -> None:
    signals = [s for queue in run.pending_signals.values() for s in queue]
    if signals:
        rows = [
            (s.topic, s.signal_id, _when(s.received_at), _short(s.payload))
            for s in signals
        ]
        click.echo()
        _print_table(("pending signal", "id", "received", "payload"), rows)


def _event_data(event: RunEvent) -> str:
    data = vars(event)
    shown = (
        f"{name}={_short(value)}"
        for name, value in data.items()
        if name not in _BESIDE and name != "originator_topic"
    )
    return " ".join(shown)


def _state_document(run: WorkflowRun, last: int) -> dict[str, Any]:
    """The run's state as plain data (``_to_json`` tags what JSON lacks)."""
    error = run.error
    return {
        "workflow_id": run.id,
        "workflow": run.name,
        "version": run.version,
        "last_version": last,
        "status": run.status.value,
        "started_at": run.started_at,
        "modified_at": run.modified_on,
        "parent_id": run.parent_id,
        "args": list(run.args),
        "kwargs": run.kwargs,
        "result": run.result,
        "error": None if error is None else error.to_dict(),
        "cancel_requested": run.cancel_requested,
        "cancel_reason": run.cancel_reason,
        "next_seq": run.next_seq,
        "commands": [attrs.asdict(record) for record in run.commands],
        "pending_signals": [
            attrs.asdict(signal)
            for queue in run.pending_signals.values()
            for signal in queue
        ],
        "pending_timers": [
            {"seq": seq, "fire_at": at} for seq, at in run.pending_timers.items()
        ],
    }
