"""Loading the modules that define workflows, as ``python -m`` would.

``chronik run`` and ``chronik verify`` take a dotted module name or a ``.py`` file.
A module that defines ``converters`` (a list, as ``ActorSystem.open`` takes it)
gives the journal's user types: the modules of ``run`` and ``verify`` and those of
``chronik --converters M`` (every command) are asked.
A file under the current directory imports under its dotted path from there; a
file elsewhere imports under its stem, from its own directory. A script run as
``python app.py`` recorded its workflows as ``__main__:fn``: ``answer_as_main``
lets the imported module's workflows answer to those names too.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import click

from actors._definitions import WorkflowDefinition, workflow
from actors.cli._app import debug_traceback, describe, fail, options

__all__ = [
    "FIX_CODE",
    "answer_as_main",
    "cli_converters",
    "converters_in",
    "import_spec",
]

FIX_CODE: Final = "fix the module (CHRONIK_DEBUG=1 shows the traceback)"


def import_spec(spec: str) -> ModuleType:
    """Import ``spec`` (``shop.orders`` or ``shop/orders.py``) as ``python -m``
    run from the current directory would."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    name, file = spec, None
    if spec.endswith(".py") or "/" in spec:
        file = Path(spec).resolve()
        if not file.is_file() or file.suffix != ".py":
            fail(
                f"module {spec!r} is not a .py file",
                "pass a .py file that exists, or a dotted module name",
            )
        try:
            name = ".".join(file.relative_to(here).with_suffix("").parts)
        except ValueError:  # outside the current directory: import it from its own
            sys.path.insert(0, str(file.parent))
            name = file.stem
    module = _import_name(name, spec)
    if file is not None and Path(module.__file__ or "").resolve() != file:
        fail(
            f"{spec} imports as module {name!r}, which is {module.__file__}",
            "rename the file, or pass the module's dotted name",
        )
    return module


def _import_name(name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            fail(
                f"no module named {name!r}",
                "pass a dotted module name importable from the current directory "
                "(or PYTHONPATH), or a .py file",
            )
        debug_traceback()
        fail(f"importing {spec} failed: {describe(error)}", FIX_CODE)
    except Exception as error:
        debug_traceback()
        fail(f"importing {spec} failed: {describe(error)}", FIX_CODE)


def cli_converters(ctx: click.Context) -> list[Any]:
    """The converters of the modules ``chronik --converters M`` names."""
    return converters_in([import_spec(spec) for spec in options(ctx).converters])


def converters_in(modules: Iterable[ModuleType]) -> list[Any]:
    """The ``converters`` the modules define, in order (none if they define none)."""
    found: list[Any] = []
    for module in modules:
        converters = getattr(module, "converters", ())
        if not isinstance(converters, list | tuple):
            fail(
                f"{module.__name__}.converters is {converters!r}, not a list",
                "define converters = [TheClass, ...] as ActorSystem.open takes it",
            )
        found += converters
    return found


def answer_as_main(module: ModuleType) -> None:
    """Register MODULE's workflows also as ``__main__:qualname``: the names of
    the runs it started when it ran as a script."""
    prefix = f"{module.__name__}:"
    for value in list(vars(module).values()):
        if isinstance(value, WorkflowDefinition) and value.name.startswith(prefix):
            workflow(name="__main__:" + value.name[len(prefix) :])(value.fn)
