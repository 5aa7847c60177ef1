"""Where a journal lives: a directory (LMDB) or a PostgreSQL URL (issue 14).

Every entry point (``ActorSystem.open``, the client, ``Audit``, the ``chronik``
command's ``-j``/``CHRONIK_JOURNAL``) takes one string and parses it here, so a
URL that does not parse, or one of another database, is refused the same way
everywhere, before anything is written. A password never appears in a repr or
an error (``display``).
"""

from __future__ import annotations

import os
import re
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
from eventsourcing.postgres import PostgresDatastore
from psycopg.conninfo import conninfo_to_dict

from journal._errors import JournalConfigError

__all__ = [
    "TCP_SETTINGS",
    "LmdbLocation",
    "PostgresLocation",
    "connection_settings",
    "parse_location",
    "with_tcp_settings",
]

_POSTGRES_SCHEMES: Final = ("postgresql", "postgres")
_URL: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCHEMA: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_QUERY_KEYS: Final = frozenset({"schema"})


@attrs.frozen
class LmdbLocation:
    """An LMDB journal: a directory on this machine's file system."""

    path: str

    @property
    def display(self) -> str:
        return self.path


# libpq's settings of every connection chronik makes: a connection whose peer is
# gone (a host cut off from the server, a server's machine that died) fails
# within about 15 s, rather than whenever TCP gives up (minutes), so a host cut
# off comes back soon after its link does. Keepalives: probes after 5 s idle,
# every 2 s, dead after 3 unanswered; tcp_user_timeout: data unacknowledged.
TCP_SETTINGS: Final[dict[str, int]] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,  # milliseconds
}


def with_tcp_settings(datastore: PostgresDatastore) -> PostgresDatastore:
    """``datastore`` with ``TCP_SETTINGS`` on the connections its pool makes
    from now on (its pool opens lazily: before any connection is made)."""
    kwargs = datastore.pool.kwargs
    assert isinstance(kwargs, dict)
    for key, value in TCP_SETTINGS.items():
        kwargs.setdefault(key, value)
    return datastore


@attrs.frozen
class PostgresLocation:
    """A PostgreSQL journal: a database (and a schema in it) on a server."""

    host: str
    port: int
    dbname: str
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    schema: str = "public"

    @property
    def display(self) -> str:
        """The URL with the password left out."""
        user = "" if self.user is None else f"{self.user}@"
        schema = "" if self.schema == "public" else f"?schema={self.schema}"
        return f"postgresql://{user}{self.host}:{self.port}/{self.dbname}{schema}"

    def conninfo(self) -> str:
        """A libpq connection string for psycopg (with the password)."""
        parts = {
            "host": self.host,
            "port": str(self.port),
            "dbname": self.dbname,
            "user": self.user,
            "password": self.password,
            **{key: str(value) for key, value in TCP_SETTINGS.items()},
        }
        return " ".join(
            f"{key}={_quoted(value)}" for key, value in parts.items() if value
        )

    def datastore(self, **options: Any) -> PostgresDatastore:
        """An eventsourcing datastore (a connection pool) on this location;
        ``options`` as ``PostgresDatastore`` takes them (pool size...)."""
        datastore = PostgresDatastore(
            dbname=self.dbname,
            host=self.host,
            port=str(self.port),
            user=self.user or "",
            password=self.password or "",
            schema=self.schema,
            **options,
        )
        with_tcp_settings(datastore)
        return datastore

    def env(self) -> dict[str, str]:
        """eventsourcing's ``POSTGRES_*`` settings for this location."""
        env = {
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_USER": self.user or "",
            "POSTGRES_PASSWORD": self.password or "",
        }
        return env


def parse_location(source: str | os.PathLike[str]) -> LmdbLocation | PostgresLocation:
    """The journal ``source`` names; ``JournalConfigError`` (nothing written)
    for a URL that does not parse or names another kind of database."""
    text = os.fspath(source)
    if not isinstance(text, str) or not text:
        raise JournalConfigError(
            "journal", source, "is empty: pass a directory or a URL"
        )
    if not _URL.match(text):
        return LmdbLocation(text)
    split = urlsplit(text)
    scheme = split.scheme.lower()
    shown = _without_password(text)
    if scheme not in _POSTGRES_SCHEMES:
        raise JournalConfigError(
            "journal",
            shown,
            f"is a {scheme}:// URL; a journal is a directory (LMDB) or a "
            "postgresql:// URL",
        )
    try:
        port = split.port or 5432
    except ValueError:
        raise JournalConfigError(
            "journal", shown, "has a port that is not a number from 1 to 65535"
        ) from None
    host = split.hostname
    if not host:
        raise JournalConfigError(
            "journal", shown, "names no host: postgresql://USER@HOST:PORT/DATABASE"
        )
    dbname = unquote(split.path.lstrip("/"))
    if not dbname or "/" in dbname:
        raise JournalConfigError(
            "journal",
            shown,
            "names no database (or more than one path part): "
            "postgresql://USER@HOST:PORT/DATABASE",
        )
    query = parse_qs(split.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - _QUERY_KEYS)
    if unknown:
        raise JournalConfigError(
            "journal",
            shown,
            f"has settings chronik does not know: {unknown} (it knows ?schema=NAME)",
        )
    schema = query.get("schema", ["public"])[-1]
    if not _SCHEMA.match(schema):
        raise JournalConfigError(
            "journal",
            shown,
            f"has schema {schema!r}: a schema name is letters, digits and _ "
            "(63 at most), not starting with a digit",
        )
    return PostgresLocation(
        host=host,
        port=port,
        dbname=dbname,
        user=unquote(split.username) if split.username else None,
        password=unquote(split.password) if split.password else None,
        schema=schema,
    )


def connection_settings(dsn: str, *, dbname: str = "postgres") -> dict[str, str]:
    """A libpq connection string or URL as the keyword settings psycopg's
    ``connect`` and eventsourcing's ``PostgresDatastore`` take (``dbname``:
    the database when ``dsn`` names none)."""
    params = conninfo_to_dict(dsn)
    return {
        "dbname": str(params.get("dbname", dbname)),
        "host": str(params.get("host", "127.0.0.1")),
        "port": str(params.get("port", "5432")),
        "user": str(params.get("user", "postgres")),
        "password": str(params.get("password", "")),
    }


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _without_password(url: str) -> str:
    split = urlsplit(url)
    if split.password is None:
        return url
    netloc = split.netloc.replace(f":{split.password}@", ":***@", 1)
    return split._replace(netloc=netloc).geturl()
