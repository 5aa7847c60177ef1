"""The format marker of a PostgreSQL journal (issue 14): a new schema is
marked, a marked one is accepted, a schema of other tables or another format
version is refused with nothing written."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

psycopg = pytest.importorskip("psycopg")

from eventsourcing.postgres import PostgresDatastore  # noqa: E402
from psycopg.sql import SQL, Identifier  # noqa: E402

from journal import JournalPathError  # noqa: E402
from journal._pg_format import check_format  # noqa: E402
from tests._postgres_server import connection_settings  # noqa: E402


@pytest.fixture
def settings(postgres_dsn: str) -> dict[str, str]:
    return connection_settings(postgres_dsn)


@pytest.fixture
def schema(settings: dict[str, str]) -> Iterator[str]:
    name = f"chronik_format_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(autocommit=True, **settings) as conn:
        conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(name)))


def _datastore(settings: dict[str, str], schema: str) -> PostgresDatastore:
    return PostgresDatastore(schema=schema, pool_size=4, **settings)


def _tables(settings: dict[str, str], schema: str) -> list[str]:
    with psycopg.connect(autocommit=True, **settings) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s ORDER BY table_name",
            (schema,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_a_new_schema_is_marked_once_even_by_hosts_opening_at_once(
    settings: dict[str, str], schema: str
) -> None:
    datastore = _datastore(settings, schema)
    try:
        news: list[bool] = []
        threads = [
            threading.Thread(target=lambda: news.append(check_format(datastore, "j")))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(news) == [False, False, False, True]
        assert check_format(datastore, "j") is False
        assert _tables(settings, schema) == ["chronik_format"]
    finally:
        datastore.close()


def test_a_schema_of_other_tables_is_refused_and_left_as_it_was(
    settings: dict[str, str], schema: str
) -> None:
    with psycopg.connect(autocommit=True, **settings) as conn:
        conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema)))
        conn.execute(
            SQL("CREATE TABLE {}.invoices (id int)").format(Identifier(schema))
        )
    datastore = _datastore(settings, schema)
    try:
        with pytest.raises(JournalPathError, match="did not make") as refused:
            check_format(datastore, "postgresql://h/db")
        assert "invoices" in str(refused.value)
        assert "?schema=NAME" in str(refused.value)
    finally:
        datastore.close()
    assert _tables(settings, schema) == ["invoices"]


def test_a_journal_of_another_format_version_is_refused(
    settings: dict[str, str], schema: str
) -> None:
    datastore = _datastore(settings, schema)
    try:
        check_format(datastore, "j")
        with psycopg.connect(autocommit=True, **settings) as conn:
            conn.execute(
                SQL("UPDATE {}.chronik_format SET version = 99").format(
                    Identifier(schema)
                )
            )
        with pytest.raises(JournalPathError, match="format version 99"):
            check_format(datastore, "j")
    finally:
        datastore.close()
