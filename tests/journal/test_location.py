"""Where a journal lives: a directory or a PostgreSQL URL, parsed in one place;
bad URLs are refused with a clear error that never shows the password."""

from __future__ import annotations

from pathlib import Path

import pytest

from journal import JournalConfigError
from journal._location import LmdbLocation, PostgresLocation, parse_location


def test_a_directory_is_an_lmdb_journal(tmp_path: Path) -> None:
    assert parse_location(tmp_path / "j") == LmdbLocation(str(tmp_path / "j"))
    assert parse_location("relative/dir") == LmdbLocation("relative/dir")


def test_a_postgresql_url_gives_the_servers_settings() -> None:
    location = parse_location(
        "postgresql://app:s%3Acret@db.internal:6543/orders?schema=chronik"
    )
    assert location == PostgresLocation(
        host="db.internal",
        port=6543,
        dbname="orders",
        user="app",
        password="s:cret",
        schema="chronik",
    )
    assert isinstance(location, PostgresLocation)
    assert location.env() == {
        "POSTGRES_HOST": "db.internal",
        "POSTGRES_PORT": "6543",
        "POSTGRES_DBNAME": "orders",
        "POSTGRES_SCHEMA": "chronik",
        "POSTGRES_USER": "app",
        "POSTGRES_PASSWORD": "s:cret",
    }
    assert "s:cret" not in repr(location)
    assert location.display == "postgresql://app@db.internal:6543/orders?schema=chronik"
    short = parse_location("postgres://127.0.0.1/test")
    assert isinstance(short, PostgresLocation)
    assert (short.port, short.user, short.schema) == (5432, None, "public")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://u@h/db", "is a mysql:// URL"),
        ("postgresql://u:pw@h:99999/db", "port"),
        ("postgresql://u:pw@h:port/db", "port"),
        ("postgresql:///db", "names no host"),
        ("postgresql://u:pw@h:5432", "names no database"),
        ("postgresql://u:pw@h:5432/a/b", "names no database"),
        ("postgresql://u:pw@h/db?sslmode=disable", "does not know"),
        ("postgresql://u:pw@h/db?schema=1bad", "schema"),
        ("postgresql://u:pw@h/db?schema=a;drop", "schema"),
        ("", "is empty"),
    ],
)
def test_a_bad_url_is_refused_clearly_without_its_password(
    url: str, problem: str
) -> None:
    with pytest.raises(JournalConfigError, match=problem) as refused:
        parse_location(url)
    assert ":pw@" not in str(refused.value)
