"""Workflows of the guard tests: importable by name, so ``chronik verify
--module tests.actors._guard_workflows`` finds them."""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import datetime
import gc
import logging
import os
import random
import secrets
import select
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from actors import WorkflowContext, activity, workflow

executed: list[str] = []  # steps that ran, in order


@activity
def charge_card(amount: int) -> int:
    executed.append("charge_card")
    return amount


@activity
def noop() -> None:
    return None


def _every_forbidden_call() -> list[Any]:
    """What a step may do freely: the calls workflow code may not make."""
    done: list[Any] = [
        time.time(),
        time.monotonic(),
        datetime.datetime.now(),
        random.randint(1, 6),
        uuid.uuid4(),
        os.urandom(4),
        secrets.token_hex(4),
    ]
    with open(os.devnull) as null:
        done.append(null.read())
    thread = threading.Thread(target=done.append, args=("thread",))
    thread.start()
    thread.join()
    time.sleep(0)
    return [str(value) for value in done]


@activity
def sync_step() -> int:
    return len(_every_forbidden_call())


@activity
async def async_step() -> int:
    await asyncio.sleep(0)
    return len(_every_forbidden_call())


def _start_thread() -> None:
    threading.Thread(target=lambda: None).start()


# name -> (the call, what the error names, words of the fix)
FORBIDDEN: dict[str, tuple[Callable[[], Any], str, str]] = {
    "time.time": (time.time, "time.time", "ctx.now()"),
    "time.time_ns": (time.time_ns, "time.time_ns", "ctx.now()"),
    "time.monotonic": (time.monotonic, "time.monotonic", "ctx.now()"),
    "time.perf_counter": (time.perf_counter, "time.perf_counter", "ctx.now()"),
    "datetime.now": (datetime.datetime.now, "datetime.datetime.now", "ctx.now()"),
    "datetime.utcnow": (
        datetime.datetime.utcnow,
        "datetime.datetime.utcnow",
        "ctx.now()",
    ),
    "datetime.today": (
        datetime.datetime.today,
        "datetime.datetime.today",
        "ctx.now()",
    ),
    "date.today": (datetime.date.today, "datetime.date.today", "ctx.now()"),
    "random.random": (random.random, "random.random", "ctx.random()"),
    "random.randint": (lambda: random.randint(1, 6), "random.randint", "ctx.random()"),
    "random.choice": (lambda: random.choice("abc"), "random.choice", "ctx.random()"),
    "random.shuffle": (lambda: random.shuffle([1, 2]), "random.shuffle", "random()"),
    "random.uniform": (lambda: random.uniform(0, 1), "random.uniform", "random()"),
    "random.getrandbits": (lambda: random.getrandbits(8), "random.getrandbits", "("),
    "uuid.uuid1": (uuid.uuid1, "uuid.uuid1", "ctx.uuid4()"),
    "uuid.uuid4": (uuid.uuid4, "uuid.uuid4", "ctx.uuid4()"),
    "os.urandom": (lambda: os.urandom(4), "os.urandom", "ctx.random()"),
    "secrets.token_hex": (secrets.token_hex, "secrets.token_hex", "ctx.random()"),
    "time.sleep": (lambda: time.sleep(0), "time.sleep", "await ctx.sleep(...)"),
    "open": (lambda: open(os.devnull), "open", "await ctx.call(...)"),  # noqa: SIM115
    "socket.socket": (socket.socket, "socket.socket", "await ctx.call(...)"),
    "socket.create_connection": (
        lambda: socket.create_connection(("127.0.0.1", 9), timeout=0.1),
        "socket.create_connection",
        "await ctx.call(...)",
    ),
    "subprocess.Popen": (
        lambda: subprocess.Popen(["true"]),
        "subprocess.Popen",
        "await ctx.call(...)",
    ),
    "select.select": (
        lambda: select.select([], [], [], 0),
        "select.select",
        "await ctx.call(...)",
    ),
    "threading.Thread.start": (
        _start_thread,
        "threading.Thread.start",
        "await ctx.call(...)",
    ),
    "_thread.start_new_thread": (
        lambda: _thread.start_new_thread(lambda: None, ()),
        "_thread.start_new_thread",
        "await ctx.call(...)",
    ),
}


@workflow
async def calls_forbidden(ctx: WorkflowContext, case: str) -> str:
    if case == "asyncio.sleep":
        await asyncio.sleep(0)
    else:
        FORBIDDEN[case][0]()
    return "done"


@workflow
async def catches_it(ctx: WorkflowContext) -> str:
    with contextlib.suppress(Exception):  # the code goes on as if nothing happened
        time.time()
    await ctx.call(charge_card, 1)  # never issued: the run fails first
    return "hid it"


@workflow
async def steps_do_it(ctx: WorkflowContext) -> list[int]:
    return [await ctx.call(sync_step), await ctx.call(async_step)]


@workflow
async def waits_for_a_thread(ctx: WorkflowContext, key: str) -> bool:
    """Holds its thread while another thread calls what the code may not."""
    running, done = THREAD_EVENTS[key]
    running.set()
    return done.wait(10.0)


THREAD_EVENTS: dict[str, tuple[threading.Event, threading.Event]] = {}


@workflow(guard="off")
async def unguarded(ctx: WorkflowContext) -> float:
    return time.time()


@workflow(guard="warn")
async def warned(ctx: WorkflowContext) -> str:
    for _ in range(3):
        time.time()
        random.random()
    return "warned"


@workflow(allow=("time.time", "io"))
async def allowed(ctx: WorkflowContext, also_random: bool) -> str:
    time.time()
    with open(os.devnull) as null:
        null.read()
    if also_random:
        random.random()
    return "allowed"


logger = logging.getLogger("tests.guards")


@workflow
async def logs_and_prints(ctx: WorkflowContext) -> str:
    logger.warning("a warning from workflow code")
    try:
        raise ValueError("shown with its traceback")
    except ValueError:
        logger.exception("an exception from workflow code")
    print("printed from workflow code")
    return "logged"


class _Timed:
    def __del__(self) -> None:
        time.time()  # a finaliser the interpreter runs in passing


@workflow
async def collects_garbage(ctx: WorkflowContext) -> str:
    _Timed()  # dropped at once: its __del__ runs inside the workflow's code
    gc.collect()  # runs the gc callbacks (a profiler's clock) inside it too
    return "collected"


@workflow
async def recorded_values(ctx: WorkflowContext) -> list[Any]:
    return [ctx.now(), ctx.uuid4(), ctx.random(), random.Random(7).randint(1, 6)]


@workflow
async def child(ctx: WorkflowContext) -> str:
    return "child"


# -- unawaited commands: the line of each is asserted ------------------------------


@workflow
async def forgets(ctx: WorkflowContext, kind: str) -> str:
    if kind == "call":
        ctx.call(charge_card, 5)  # forgotten: call
    elif kind == "sleep":
        ctx.sleep(3600.0)  # forgotten: sleep
    elif kind == "receive":
        ctx.receive("approval")  # forgotten: receive
    elif kind == "spawn":
        ctx.spawn(child)  # forgotten: spawn
    elif kind == "gather":
        ctx.gather(ctx.call(charge_card, 1), ctx.sleep(1.0))  # forgotten: gather
    return "done"


@workflow
async def forgets_then_raises(ctx: WorkflowContext) -> str:
    ctx.call(charge_card, 5)  # forgotten: then raises
    raise KeyError("boom")


@workflow
async def awaits_later(ctx: WorkflowContext) -> list[Any]:
    charge = ctx.call(charge_card, 3)
    gathered = ctx.gather(ctx.call(charge_card, 4), ctx.sleep(0.0))
    await ctx.sleep(0.0)
    return [await charge, await gathered]


@workflow
async def holds_a_receive(ctx: WorkflowContext) -> str:
    ctx.receive("approval")  # held when the cancel comes: abandoned, not forgotten
    await ctx.sleep(3600.0)
    return "slept"


@workflow
async def hundred_steps(ctx: WorkflowContext) -> int:
    for _ in range(100):
        await ctx.call(noop)
    return 100
