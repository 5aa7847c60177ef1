"""The command group, its shared options and how errors become exit codes.

Exit codes: 0 fine, 1 a verification found a problem, 2 bad usage (unknown run,
bad JSON, a path that is not a journal, ...). Every error is one line on stderr
naming what went wrong and how to fix it; ``CHRONIK_DEBUG=1`` adds the traceback.

Commands reach runs through ``actors.Client`` (``open_client``), and every
read command prints one JSON document with ``--json`` (``json_option``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, time
from enum import Enum
from typing import Any, Final, NoReturn, TypeVar

import attrs
import click

from actors._client import Client
from aggregates import WorkflowRun
from chronik_errors import ChronikError
from journal import JournalPathError

__all__ = [
    "EXIT_BAD_USAGE",
    "EXIT_OK",
    "EXIT_VERIFY_FAILED",
    "FIX_JOURNAL",
    "CliError",
    "Options",
    "VerificationFailed",
    "cli",
    "debug_traceback",
    "describe",
    "echo_json",
    "fail",
    "json_option",
    "main",
    "one_line",
    "open_client",
    "options",
    "plain",
    "read_run",
]

EXIT_OK: Final = 0
EXIT_VERIFY_FAILED: Final = 1
EXIT_BAD_USAGE: Final = 2
DEFAULT_JOURNAL: Final = "data"
FIX_JOURNAL: Final = "pass -j/--journal DIR (or set CHRONIK_JOURNAL) to a journal"
_F = TypeVar("_F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A one-line error: what went wrong, then how to fix it (exit code 2)."""

    exit_code = EXIT_BAD_USAGE

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.problem = problem
        self.fix = fix

    def show(self, file: Any = None) -> None:
        click.echo(f"chronik: error: {self.format_message()}", err=True)


class VerificationFailed(CliError):
    """A verification found a problem (exit code 1)."""

    exit_code = EXIT_VERIFY_FAILED


def fail(problem: str, fix: str, *, exit_code: int = EXIT_BAD_USAGE) -> NoReturn:
    if exit_code == EXIT_VERIFY_FAILED:
        raise VerificationFailed(problem, fix)
    raise CliError(problem, fix)


@attrs.frozen
class Options:
    """What every command may use: the journal's path, and the modules whose
    ``converters`` list the user types its events hold."""

    journal: str
    converters: tuple[str, ...] = ()


def options(ctx: click.Context) -> Options:
    found = ctx.find_object(Options)
    if found is None:  # a command invoked outside the group (tests of one command)
        journal = os.environ.get("CHRONIK_JOURNAL", DEFAULT_JOURNAL)
        modules = os.environ.get("CHRONIK_CONVERTERS", "").split()
        return Options(journal=journal, converters=tuple(modules))
    return found


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-j",
    "--journal",
    envvar="CHRONIK_JOURNAL",
    default=DEFAULT_JOURNAL,
    show_default=True,
    type=click.Path(file_okay=False),
    help="The journal directory (or set CHRONIK_JOURNAL).",
)
@click.option(
    "--converters",
    "converters",
    envvar="CHRONIK_CONVERTERS",
    multiple=True,
    metavar="M",
    help="A module (or .py file) whose `converters` list the journal's user "
    "types; repeatable (or set CHRONIK_CONVERTERS).",
)
@click.pass_context
def cli(ctx: click.Context, journal: str, converters: tuple[str, ...]) -> None:
    """Host, operate and audit chronik workflows and their journal."""
    ctx.obj = Options(journal=journal, converters=converters)


# -- the journal, through a client -------------------------------------------------


@contextlib.contextmanager
def open_client(
    path: str, converters: Sequence[Any] = (), *, origin: str | None = None
) -> Iterator[Client]:
    """A ``Client`` of the journal at ``path``; a path that holds none fails."""
    try:
        client = Client(path, converters=converters, origin=origin)
    except JournalPathError as error:
        fail(f"journal {path!r} {error.problem}", FIX_JOURNAL)
    with client:
        yield client


def read_run(client: Client, run_id: str) -> WorkflowRun:
    """Run ``run_id`` as the journal holds it now. ``UnknownRunError`` also for
    the id of a stream that is not a run (the operator inbox, the index of
    unfinished runs)."""
    return client.history(run_id)


# -- JSON output -------------------------------------------------------------------


def json_option(help: str = "Print one JSON document.") -> Callable[[_F], _F]:
    """The ``--json`` flag of the read commands (the parameter ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def echo_json(document: Any) -> None:
    """``document`` as indented JSON on stdout (``plain`` makes it JSON data)."""
    click.echo(json.dumps(plain(document), indent=2, allow_nan=False))


def plain(value: Any) -> Any:
    """``value`` as plain JSON data, to read rather than load back (history
    files tag values exactly): enums as their value, datetimes, dates and times
    as ISO 8601 strings, tuples and sets as lists, attrs and dataclass instances
    as dicts of their fields, bytes as hex, non-finite floats and any other
    value as its str."""
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, dict):
        return {_key(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return [plain(item) for item in _sorted(value)]
    fields = _fields(value)
    if fields is not None:
        return {name: plain(getattr(value, name)) for name in fields}
    return _scalar(value)


def _fields(value: Any) -> list[str] | None:
    """The field names of an attrs or dataclass instance (else None)."""
    if attrs.has(type(value)):
        return [field.name for field in attrs.fields(type(value))]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [field.name for field in dataclasses.fields(value)]
    return None


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return str(value)  # UUID, Decimal, a user type: as it prints


def _key(key: Any) -> str:
    found = plain(key)
    return found if isinstance(found, str) else json.dumps(found)


def _sorted(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:  # items of types that do not compare
        return list(items)


# -- the console script --------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """The console script: run the group, turn every error into one line."""
    try:
        cli.main(args=argv, prog_name="chronik", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.Abort:
        click.echo("chronik: aborted", err=True)
        return 130
    except Exception as error:  # every failure gets one line
        message, code = _explain(error)
        click.echo(f"chronik: error: {message}", err=True)
        return code
    return EXIT_OK


def _explain(error: Exception) -> tuple[str, int]:
    """The one line to print for ``error``, and the exit code."""
    if isinstance(error, click.UsageError):  # not click's four-line usage block
        command = error.ctx.command_path if error.ctx is not None else "chronik"
        message = " ".join(error.format_message().split()).rstrip(".")
        return f"{message}; see '{command} --help'", EXIT_BAD_USAGE
    if isinstance(error, click.ClickException):
        return " ".join(error.format_message().split()), int(error.exit_code)
    debug_traceback()
    if isinstance(error, ChronikError):
        return _one_line(error), EXIT_BAD_USAGE
    return (
        f"{type(error).__name__}: {_one_line(error)} (a chronik bug? run with "
        "CHRONIK_DEBUG=1 for the traceback and report it)",
        EXIT_BAD_USAGE,
    )


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) as one space."""
    return " ".join(text.split())


def describe(error: BaseException) -> str:
    """``Type: message`` on one line."""
    return f"{type(error).__name__}: {one_line(str(error))}"


def debug_traceback() -> None:
    """Print the traceback being handled when ``CHRONIK_DEBUG`` is set."""
    if os.environ.get("CHRONIK_DEBUG"):
        traceback.print_exc(file=sys.stderr)


def _one_line(error: BaseException) -> str:
    return one_line(str(error)) or type(error).__name__
