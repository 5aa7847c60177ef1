"""The command group, its shared options and how errors become exit codes.

Exit codes: 0 fine, 1 a verification found a problem, 2 bad usage (unknown run,
bad JSON, a path that is not a journal, ...). Every error is one line on stderr
naming what went wrong and how to fix it; ``CHRONIK_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Final, NoReturn

import attrs
import click

from chronik_errors import ChronikError

__all__ = [
    "EXIT_BAD_USAGE",
    "EXIT_OK",
    "EXIT_VERIFY_FAILED",
    "CliError",
    "Options",
    "VerificationFailed",
    "cli",
    "debug_traceback",
    "describe",
    "fail",
    "main",
    "one_line",
    "options",
]

EXIT_OK: Final = 0
EXIT_VERIFY_FAILED: Final = 1
EXIT_BAD_USAGE: Final = 2
DEFAULT_JOURNAL: Final = "data"


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
