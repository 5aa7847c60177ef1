"""The runtime tests' fixtures (``clock``, ``path``, ``system``), reused."""

from tests.actors.conftest import clock, path, system

__all__ = ["clock", "path", "system"]
