"""The determinism guard: calls a replay cannot repeat fail the run while the
workflow's code runs.

The instance installs a profile hook (``sys.setprofile``, which affects the
current thread only) just while it resumes the coroutine, and takes it off
again afterwards, putting back any profile function that was there before.
The hook looks each C call up in a dict of builtin function objects and each
Python call in a dict keyed by code object ids (O(1), no frame walk), so code
that calls nothing forbidden pays one small Python call per call event. Only a
hit walks the stack: calls made on behalf of chronik, logging, tracebacks or
imports are let through, and the name the workflow used (``random.randint``
rather than the ``getrandbits`` it ends in) is found for the error. The
context's own methods (``ctx.now()`` reads the system clock) run with the hook
off: see ``unguarded``.

Steps run on other threads and are never guarded; nor is anything else on
another thread while a workflow's code runs.
"""

from __future__ import annotations

import _socket
import _thread
import asyncio
import datetime
import functools
import gc
import logging
import os
import random
import secrets
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, Literal, ParamSpec, TypeVar

import attrs

from actors._errors import GuardSettingError, NondeterministicCallError

__all__ = [
    "CATEGORIES",
    "FORBIDDEN_CALLS",
    "GUARD_MODES",
    "Guard",
    "GuardMode",
    "check_allow",
    "check_guard_mode",
    "unguarded",
]

logger = logging.getLogger("chronik.actors")

GuardMode = Literal["raise", "warn", "off"]
GUARD_MODES: tuple[GuardMode, ...] = ("raise", "warn", "off")

_REPLAY_IO = "move it into a step: await ctx.call(...)"
# What to call instead, by category of forbidden call.
CATEGORIES: dict[str, str] = {
    "clock": "use ctx.now() (recorded)",
    "random": "use ctx.random() or ctx.uuid4() (recorded)",
    "uuid": "use ctx.uuid4() (recorded)",
    "sleep": "use await ctx.sleep(...) (a durable timer)",
    "io": f"blocking I/O runs again on every replay; {_REPLAY_IO}",
    "threads": f"a thread runs outside the replay; {_REPLAY_IO}",
}


@attrs.frozen
class _Rule:
    name: str
    category: str


def _c_rules() -> dict[object, _Rule]:
    """Builtin functions by object (bound builtins compare by self and method)."""
    table: dict[str, tuple[object, ...]] = {
        "clock": (
            time.time,
            time.time_ns,
            time.monotonic,
            time.monotonic_ns,
            time.perf_counter,
            time.perf_counter_ns,
            time.process_time,
            datetime.datetime.now,
            datetime.datetime.utcnow,
            datetime.datetime.today,
            datetime.date.today,
        ),
        # random's module functions are methods of one hidden Random; they all
        # end in its random() or getrandbits(). A Random(seed) of the code's own
        # is deterministic and allowed.
        "random": (random.random, random.getrandbits, os.urandom),
        "uuid": tuple(
            found
            for found in (getattr(uuid, "_generate_time_safe", None),)
            if found is not None
        ),
        "sleep": (time.sleep,),
        "io": (
            open,
            os.open,
            os.system,
            select.select,
            _socket.getaddrinfo,
            _socket.gethostbyname,
            _socket.gethostbyname_ex,
            _socket.gethostbyaddr,
        ),
        "threads": (_thread.start_new_thread,),
    }
    rules: dict[object, _Rule] = {}
    for category, functions in table.items():
        for function in functions:
            rules[function] = _Rule(_name_of(function), category)
    return rules


def _py_rules() -> dict[int, tuple[object, _Rule]]:
    """Python functions by the id of their code (a code object's own hash
    reads its whole body; the code is kept alive beside its rule)."""
    table: dict[str, tuple[tuple[str, Callable[..., Any]], ...]] = {
        "uuid": (("uuid.uuid1", uuid.uuid1), ("uuid.uuid4", uuid.uuid4)),
        "sleep": (("asyncio.sleep", asyncio.sleep),),
        "io": (
            ("socket.socket", socket.socket.__init__),
            ("socket.create_connection", socket.create_connection),
            ("subprocess.Popen", subprocess.Popen.__init__),
        ),
        "threads": (("threading.Thread.start", threading.Thread.start),),
    }
    return {
        id(function.__code__): (function.__code__, _Rule(name, category))
        for category, functions in table.items()
        for name, function in functions
    }


_MODULE_NAMES = {
    "posix": "os",
    "nt": "os",
    "_socket": "socket",
    "_io": "builtins",
    "io": "builtins",
}


def _name_of(function: object) -> str:
    owner = getattr(function, "__self__", None)
    name = str(getattr(function, "__name__", function))
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}.{name}"
    if owner is random._inst:
        return f"random.{name}"
    module = getattr(owner, "__name__", None) or getattr(function, "__module__", "")
    module = _MODULE_NAMES.get(str(module), str(module))
    return name if module == "builtins" else f"{module}.{name}"


_C_RULES = _c_rules()
_PY_RULES = _py_rules()
# Every name and category `allow=` takes.
FORBIDDEN_CALLS: frozenset[str] = frozenset(
    {rule.name for rule in _C_RULES.values()}
    | {rule.name for _, rule in _PY_RULES.values()}
    | {f"random.{name}" for name in random.__all__ if name[0].islower()}
    | {f"secrets.{name}" for name in secrets.__all__}
)

# Modules whose calls on the workflow's behalf are let through: chronik's own,
# and what logging, tracebacks, warnings and imports do (they read files and
# the clock, but not to decide what the workflow does).
_EXEMPT = frozenset(
    {
        "actors",
        "aggregates",
        "journal",
        "supervision",
        "chronik_errors",
        "pykka",
        "logging",
        "linecache",
        "traceback",
        "tokenize",
        "warnings",
        "importlib",
        "zipimport",
        "weakref",
    }
)
# Modules that wrap a forbidden call: the error names the call the workflow
# made into them (random.randint), not the one they end in (getrandbits).
_WRAPPERS = frozenset(
    {
        "random",
        "secrets",
        "uuid",
        "threading",
        "subprocess",
        "socket",
        "tempfile",
        "pathlib",
        "shutil",
        "os",
        "asyncio",
        "concurrent",
    }
)


def check_guard_mode(value: object) -> GuardMode:
    for mode in GUARD_MODES:
        if value == mode and isinstance(value, str):
            return mode
    raise GuardSettingError("guard", value, GUARD_MODES)


def check_allow(value: object) -> frozenset[str]:
    """``allow=``: names of forbidden calls and categories, as a frozenset."""
    names: Iterable[object] = (
        (value,) if isinstance(value, str) else value  # type: ignore[assignment]
    )
    try:
        given = tuple(names)
    except TypeError:
        raise GuardSettingError("allow", value, _ALLOW_CHOICES) from None
    for name in given:
        if name not in _ALLOW_CHOICES:
            raise GuardSettingError("allow", name, _ALLOW_CHOICES)
    return frozenset(str(name) for name in given)


_ALLOW_CHOICES: tuple[str, ...] = (*CATEGORIES, *sorted(FORBIDDEN_CALLS))


class Guard:
    """The hook for one run's code. ``error`` is the first forbidden call in
    ``raise`` mode: the run fails with it even if the code caught it."""

    def __init__(
        self, workflow_id: str, mode: GuardMode, allow: frozenset[str]
    ) -> None:
        self.workflow_id = workflow_id
        self.mode = mode
        self.allow = allow
        self.error: NondeterministicCallError | None = None
        self._warned: set[str] = set()
        self._top: FrameType | None = None  # the workflow coroutine's frame
        self._previous: Any = None
        self._hook = self._make_hook()

    def _make_hook(self) -> Callable[[FrameType, str, Any], None]:
        c_rules, py_rules, hit = _C_RULES, _PY_RULES, self._hit

        def hook(frame: FrameType, event: str, arg: Any) -> None:
            if event == "c_call":
                rule = c_rules.get(arg)
                if rule is not None:
                    hit(frame, rule, caller=frame)
            elif event == "call":
                found = py_rules.get(id(frame.f_code))
                if found is not None:
                    hit(frame, found[1], caller=frame.f_back)

        hook.chronik_guard = True  # type: ignore[attr-defined]
        return hook

    def enter(self, top: FrameType | None) -> bool:
        """Install the hook to guard the coroutine whose frame is ``top``;
        whether it was (a C profiler such as cProfile is left alone)."""
        if self.mode == "off" or top is None:
            return False
        previous = sys.getprofile()
        if previous is not None and not callable(previous):
            return False
        self._top, self._previous = top, previous
        sys.setprofile(self._hook if previous is None else self._chain(previous))
        return True

    def exit(self) -> None:
        sys.setprofile(self._previous)
        self._top = self._previous = None

    def _chain(self, previous: Callable[..., Any]) -> Callable[..., Any]:
        hook = self._hook

        def chained(frame: FrameType, event: str, arg: Any) -> Any:
            previous(frame, event, arg)
            hook(frame, event, arg)

        chained.chronik_guard = True  # type: ignore[attr-defined]
        return chained

    def _hit(self, frame: FrameType, rule: _Rule, caller: FrameType | None) -> None:
        name, where = rule.name, caller
        # Walk out to the coroutine's frame: the call the workflow made, and
        # whether chronik, logging or an import made it on its behalf, or a
        # callback the interpreter ran in passing (garbage collection).
        interrupts = _interrupt_codes()
        current: FrameType | None = caller
        while current is not None:
            module = str(current.f_globals.get("__name__", ""))
            root = module.partition(".")[0]
            if root in _EXEMPT or current.f_code in interrupts:
                return
            if current.f_code.co_name == "__del__":
                return
            if root in _WRAPPERS and current is not self._top:
                name, where = _call_name(module, current.f_code), current.f_back
            if current is self._top:
                break
            current = current.f_back
        else:
            return  # not under the workflow's code (a finaliser, say)
        if {name, rule.name, rule.category} & self.allow:
            return
        location = "?" if where is None else _location(where)
        if self.mode == "warn":
            if name not in self._warned:
                self._warned.add(name)
                logger.warning(
                    "workflow %r called %s at %s; a replay will not get the same: %s",
                    self.workflow_id,
                    name,
                    location,
                    CATEGORIES[rule.category],
                )
            return
        error = NondeterministicCallError(
            self.workflow_id, name, CATEGORIES[rule.category], location
        )
        if self.error is None:
            self.error = error
        raise error


def _interrupt_codes() -> set[Any]:
    """The code of what the interpreter calls between any two instructions of
    the workflow's code, not because the code called it: gc callbacks (a
    profiler's clock), besides finalisers (``__del__``, ``weakref``)."""
    codes = set()
    for callback in gc.callbacks:
        code = getattr(getattr(callback, "__func__", callback), "__code__", None)
        if code is not None:
            codes.add(code)
    return codes


def _call_name(module: str, code: Any) -> str:
    qualname = str(code.co_qualname).removesuffix(".__init__")
    if module in ("random", "secrets"):  # methods of a hidden instance
        qualname = qualname.rpartition(".")[2]
    return f"{module}.{qualname}"


def _location(frame: FrameType) -> str:
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


_P = ParamSpec("_P")
_R = TypeVar("_R")


def unguarded(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``method`` (chronik's own code called from workflow code) with the
    guard's hook off: it may read the clock, encode values and so on."""

    @functools.wraps(method)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        hook = sys.getprofile()
        if hook is None or not getattr(hook, "chronik_guard", False):
            return method(*args, **kwargs)
        sys.setprofile(None)
        try:
            return method(*args, **kwargs)
        finally:
            sys.setprofile(hook)

    return call
