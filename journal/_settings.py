"""Journal settings, read from an eventsourcing ``Environment`` like the library's own
persistence modules read theirs (so ``MYAPP_LMDB_PATH`` overrides ``LMDB_PATH``)."""

from __future__ import annotations

import os

import attrs
from eventsourcing.utils import Environment, strtobool

from journal._errors import JournalConfigError

__all__ = ["DEFAULT_MAP_SIZE", "DEFAULT_MAX_READERS", "JournalSettings"]

DEFAULT_MAP_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_READERS = 126
_MIN_MAP_SIZE = 256 * 1024

LMDB_PATH = "LMDB_PATH"
LMDB_MAP_SIZE = "LMDB_MAP_SIZE"
LMDB_MAX_MAP_SIZE = "LMDB_MAX_MAP_SIZE"
LMDB_MAX_READERS = "LMDB_MAX_READERS"
LMDB_SYNC = "LMDB_SYNC"


@attrs.frozen
class JournalSettings:
    """How one journal is opened.

    ``map_size`` is where the map starts; it doubles whenever a write finds it full,
    up to ``max_map_size`` if one is set. ``sync=False`` skips the fsync of each
    commit: a process crash loses nothing, an operating-system crash may lose the
    last commits.
    """

    path: str
    map_size: int = DEFAULT_MAP_SIZE
    max_map_size: int | None = None
    max_readers: int = DEFAULT_MAX_READERS
    sync: bool = True

    def __attrs_post_init__(self) -> None:
        if not self.path:
            raise JournalConfigError(
                LMDB_PATH, self.path, "is required: set it to a directory path"
            )
        if self.map_size < _MIN_MAP_SIZE:
            raise JournalConfigError(
                LMDB_MAP_SIZE, self.map_size, f"must be at least {_MIN_MAP_SIZE} bytes"
            )
        if self.max_map_size is not None and self.max_map_size < self.map_size:
            raise JournalConfigError(
                LMDB_MAX_MAP_SIZE,
                self.max_map_size,
                f"must not be below LMDB_MAP_SIZE={self.map_size}",
            )
        if self.max_readers < 1:
            raise JournalConfigError(
                LMDB_MAX_READERS, self.max_readers, "must be a positive integer"
            )

    @property
    def real_path(self) -> str:
        return os.path.realpath(os.path.expanduser(self.path))

    @classmethod
    def from_env(cls, env: Environment) -> JournalSettings:
        path = env.get(LMDB_PATH)
        if not path:
            raise JournalConfigError(
                LMDB_PATH,
                path,
                "is required with PERSISTENCE_MODULE=journal: set it to the "
                "directory that holds (or will hold) the journal",
            )
        max_map = env.get(LMDB_MAX_MAP_SIZE)
        return cls(
            path=path,
            map_size=_int_setting(env, LMDB_MAP_SIZE, DEFAULT_MAP_SIZE),
            max_map_size=_int_setting(env, LMDB_MAX_MAP_SIZE, 0) if max_map else None,
            max_readers=_int_setting(env, LMDB_MAX_READERS, DEFAULT_MAX_READERS),
            sync=_bool_setting(env, LMDB_SYNC, default=True),
        )


def _int_setting(env: Environment, name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise JournalConfigError(name, raw, "must be an integer") from None


def _bool_setting(env: Environment, name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return bool(strtobool(raw))
    except ValueError:
        raise JournalConfigError(
            name, raw, "must be yes/no, true/false or 1/0"
        ) from None
