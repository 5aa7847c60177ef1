"""Operating commands: host a module's workflows; signal and cancel runs.

``chronik run MODULE`` imports MODULE (its ``@workflow`` definitions), opens the
journal (resuming every unfinished run), calls MODULE's ``configure(system)`` if
it has one, and hosts until SIGINT or SIGTERM.

``chronik signal`` and ``chronik cancel`` never drive a run themselves (the
system hosting it does): they go through an ``actors.Client``, which checks the
run and appends a request to the journal's operator inbox (``actors._inbox``),
and, if a host is live (it holds the journal's host lock, ``actors._hostlock``),
wait until the run's history, read through the client, shows it delivered.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, ModuleType
from typing import Any, Final

import click

from actors._backend import backend_for
from actors._client import Client
from actors._errors import UnknownRunError
from actors._index import UnfinishedRuns
from actors._ownership import check_host_name
from actors._system import ActorSystem, RunsApp
from actors.cli._app import (
    cli,
    debug_traceback,
    describe,
    fail,
    one_line,
    open_client,
    options,
    read_run,
)
from actors.cli._modules import (
    FIX_CODE,
    answer_as_main,
    cli_converters,
    converters_in,
    import_spec,
)
from aggregates import RunFinishedError, RunStatus, WorkflowRun
from journal import LeaseSettingError, UnencodableValueError, UnknownTypeNameError
from journal._location import LmdbLocation, parse_location

__all__ = ["cancel", "run", "signal_run"]

_POLL: Final = 0.02
_LIST_HINT: Final = "list the runs with `chronik list`"


# -- chronik run -----------------------------------------------------------------


@cli.command()
@click.argument("module")
@click.option(
    "-m",
    "--module",
    "modules",
    multiple=True,
    metavar="M",
    help="Another module (or .py file) to import and configure; repeatable.",
)
@click.option(
    "--host-name",
    envvar="CHRONIK_HOST_NAME",
    metavar="NAME",
    help="A name this host keeps across restarts (unique among live hosts): "
    "restarted under it, it takes its previous life's runs at once instead of "
    "after their leases expire (what a PostgreSQL journal needs for a fast "
    "restart). Default: CHRONIK_HOST_NAME, else none.",
)
@click.pass_context
def run(
    ctx: click.Context, module: str, modules: tuple[str, ...], host_name: str | None
) -> None:
    """Host the workflows and services of MODULE until Ctrl-C (or SIGTERM).

    MODULE is a dotted name importable from the current directory (or
    PYTHONPATH), or a .py file: a file under the current directory imports
    under its dotted path (shop/orders.py is shop.orders, as with python -m),
    any other under its stem. Workflows are named "module:function", so runs
    resolve to the same code under that name. Runs that MODULE started when run
    as a script are named "__main__:function" and resolve to MODULE too (not
    their child workflows, though: give a workflow that spawns children a name
    of its own, @workflow(name=...), if it may start under __main__).

    After opening the journal (every unfinished run resumes), each module that
    defines configure(system) gets it called with the open ActorSystem, to
    register services and spawn runs. Signals and cancels queued with
    `chronik signal`/`chronik cancel` are delivered. Exit 0 after a clean stop;
    2 if the system stopped on a failure, with the reason.
    """
    if host_name is not None:
        try:
            check_host_name(host_name)
        except LeaseSettingError as error:  # before the journal is touched
            fail(str(error), "give --host-name a name of 1-100 characters, no '#'")
    _log_to_stderr()
    loaded = [import_spec(spec) for spec in (module, *modules)]
    answer_as_main(loaded[0])
    path = options(ctx).journal
    resumed = _unfinished(path)  # before the system can end any of them
    stop = _stop_on_signals()  # from now on, Ctrl-C stops cleanly
    converters = [*cli_converters(ctx), *converters_in(loaded)]
    system = ActorSystem.open(path, converters=converters, host_name=host_name)
    try:
        for each in loaded:
            _configure(each, system)
        plural = "" if resumed == 1 else "s"
        click.echo(
            f"chronik: hosting {_shown(path)} ({resumed} unfinished "
            f"run{plural} resumed; pid {os.getpid()}); Ctrl-C stops"
        )
        while not stop.wait(0.25) and system.failure is None:
            pass
    finally:
        system.close()
    if system.failure is not None:
        fail(
            f"the system on {path!r} stopped: a failure escalated to the root of "
            f"its supervision tree: {one_line(repr(system.failure))}",
            "see the log above for its cause; fix it and run again (unfinished "
            "runs resume)",
        )
    click.echo("chronik: stopped; unfinished runs resume on the next open")


def _stop_on_signals() -> threading.Event:
    """An event SIGINT and SIGTERM set (a second one acts as usual)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        # A second Ctrl-C interrupts a slow close; a second SIGTERM kills.
        again = signal.default_int_handler if signum == signal.SIGINT else None
        signal.signal(signum, again or signal.SIG_DFL)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


def _configure(module: ModuleType, system: ActorSystem) -> None:
    configure = getattr(module, "configure", None)
    if configure is None:
        return
    if not callable(configure):
        fail(
            f"{module.__name__}.configure is {configure!r}, not a function",
            "define configure(system) to register services, or remove the name",
        )
    try:
        configure(system)
    except Exception as error:
        debug_traceback()
        fail(
            f"{module.__name__}.configure(system) raised {describe(error)}",
            FIX_CODE,
        )


def _unfinished(path: str) -> int:
    """How many runs are unfinished (creating the journal if there is none)."""
    backend = backend_for(path)
    backend.prepare()
    app = RunsApp(backend.env())
    try:
        return len(UnfinishedRuns(app).load())
    finally:
        app.close()


def _shown(path: str) -> str:
    """The journal as the user should see it: an absolute directory, or the
    URL without its password."""
    location = parse_location(path)
    if isinstance(location, LmdbLocation):
        return os.path.abspath(location.path)
    return location.display


def _log_to_stderr() -> None:
    logging.basicConfig(
        level=logging.INFO, format="chronik: %(levelname)s %(name)s: %(message)s"
    )


# -- chronik signal / cancel -----------------------------------------------------


def _wait_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=30.0,
        show_default=True,
        metavar="S",
        help="Seconds to wait for a live host to deliver it.",
    )(fn)
    return click.option(
        "--wait/--no-wait",
        default=True,
        show_default=True,
        help="Wait until a live host has recorded it in the run's history.",
    )(fn)


@cli.command("signal")
@click.argument("run_id", metavar="ID")
@click.argument("topic")
@click.argument("payload", metavar="JSON")
@click.option(
    "--id",
    "signal_id",
    metavar="SIGNAL_ID",
    help="The signal's id (default: a new uuid4); sending an id again is a no-op.",
)
@_wait_options
@click.pass_context
def signal_run(
    ctx: click.Context,
    run_id: str,
    topic: str,
    payload: str,
    *,
    signal_id: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Send run ID the signal TOPIC with the JSON value as its payload.

    The request goes to the journal's operator inbox; the system hosting the
    journal (`chronik run`, or any program with it open) delivers it, and
    exactly once (by its signal id). With no system open it stays queued until
    one opens the journal. Exit 0 once delivered or queued; 2 for bad usage, or
    if a live host has not delivered it within --timeout.
    """
    value = _parse_json(payload)
    if not topic:
        fail("the signal topic is empty", "pass the topic the workflow receives")
    if signal_id == "":
        fail("--id is empty", "pass a non-empty signal id, or leave --id out")
    refused = ("takes no signals", "signal a running run")
    with _refusals(ctx, run_id, *refused), _client(ctx, "signal") as client:
        run = read_run(client, run_id)
        if signal_id is not None and signal_id in run.signal_ids:  # a retry
            click.echo(f"signal {signal_id} was already delivered to run {run_id}")
            return
        sid = client.signal(run_id, topic, value, signal_id=signal_id)
        what = f"signal {topic!r} (id {sid}) for run {run_id}"

        def delivered(run: WorkflowRun) -> str | None:
            if sid in run.signal_ids:
                return f"delivered {what}"
            if run.is_finished:
                fail(
                    f"run {run_id!r} {run.status} before the {what} reached it",
                    "a finished run takes no signals",
                )
            return None

        _await(client, run_id, what, delivered, wait=wait, timeout=timeout)


@cli.command()
@click.argument("run_id", metavar="ID")
@click.option(
    "--reason",
    default="cancelled with chronik cancel",
    show_default=True,
    help="Why: the workflow sees it in WorkflowCancelled.",
)
@_wait_options
@click.pass_context
def cancel(
    ctx: click.Context, run_id: str, reason: str, wait: bool, timeout: float
) -> None:
    """Cancel run ID: the workflow gets WorkflowCancelled at its current await
    and may compensate. Queued like `chronik signal` when no system is open."""
    refused = ("cannot be cancelled", "cancel a running run")
    with _refusals(ctx, run_id, *refused), _client(ctx, "cancel") as client:
        run = read_run(client, run_id)
        if run.cancel_requested:  # a retry, or another operator's
            state = "cancelled" if run.status is RunStatus.CANCELLED else "cancelling"
            click.echo(f"run {run_id} already had a cancel request; it is {state}")
            return
        client.cancel(run_id, reason)
        what = f"cancel of run {run_id}"

        def delivered(run: WorkflowRun) -> str | None:
            if run.cancel_requested:
                return f"delivered {what}: it is cancelling"
            if run.is_finished:
                fail(
                    f"run {run_id!r} {run.status} before the {what} reached it",
                    "nothing was cancelled",
                )
            return None

        _await(client, run_id, what, delivered, wait=wait, timeout=timeout)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        fail(
            f"the payload {text!r} is not JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno} (char {error.pos})",
            "pass one JSON value, quoted for the shell: "
            """'{"ok": true}', '"text"' or 42""",
        )


@contextmanager
def _client(ctx: click.Context, command: str) -> Iterator[Client]:
    """A client of the journal that records the operator as the origin."""
    path = options(ctx).journal
    with open_client(path, cli_converters(ctx), origin=_origin(command)) as client:
        yield client


@contextmanager
def _refusals(
    ctx: click.Context, run_id: str, refused: str, fix: str
) -> Iterator[None]:
    """The client's refusals as one-line errors (it wrote nothing then):
    a finished run ``refused`` the request; ``fix`` says what to do instead."""
    try:
        yield
    except UnknownRunError:
        path = options(ctx).journal
        fail(f"no run {run_id!r} in the journal {path}", _LIST_HINT)
    except RunFinishedError as error:
        fail(
            f"run {run_id!r} has finished ({error.status}) and {refused}",
            f"{fix}; `chronik show {run_id}` shows how it ended",
        )
    except UnknownTypeNameError as error:
        fail(
            f"run {run_id!r} holds a value of type {error.name!r}, which no "
            "converter given decodes",
            "pass chronik --converters M, M a module whose `converters` list it",
        )
    except UnencodableValueError as error:
        fail(f"the payload cannot be stored: {one_line(str(error))}", "")


def _await(
    client: Client,
    run_id: str,
    what: str,
    delivered: Callable[[WorkflowRun], str | None],
    *,
    wait: bool,
    timeout: float,
) -> None:
    """Print how the request stands: delivered, or queued for a host."""
    path = client.path
    queued = (
        f"queued {what}: no system has the journal {path} open; it is delivered "
        "when one opens it (e.g. `chronik run MODULE`)"
    )
    if not client.any_host_live():
        click.echo(queued)
        return
    if not wait:
        click.echo(f"queued {what}; the live host delivers it")
        return
    deadline = time.monotonic() + timeout
    while True:
        live = client.any_host_live()
        outcome = delivered(client.history(run_id))  # after the probe: a host
        if outcome is not None:  # that left delivered what it would first
            click.echo(outcome)
            return
        if not live:
            click.echo(queued)
            return
        if time.monotonic() >= deadline:
            fail(
                f"the {what} is queued but was not delivered within {timeout:g} s",
                "it stays queued and the host delivers it (see its log); "
                "wait longer with --timeout",
            )
        time.sleep(_POLL)


def _origin(command: str) -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = "?"
    return f"chronik {command} by {user}@{socket.gethostname()} (pid {os.getpid()})"
