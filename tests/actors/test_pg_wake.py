"""Waking one host of a PostgreSQL journal (issue 14): LISTEN/NOTIFY on a
channel per host, reaching only that host; a host that is gone misses nothing
it must not (the request is in the journal)."""

from __future__ import annotations

import time

import pytest

psycopg = pytest.importorskip("psycopg")

from actors._pg_wake import PostgresWakeChannel, channel_of, wake_host_pg  # noqa: E402


def test_a_wake_reaches_only_the_host_named_and_many_wakes_make_one(
    postgres_dsn: str,
) -> None:
    a = PostgresWakeChannel.listen(postgres_dsn, "host:a:1")
    b = PostgresWakeChannel.listen(postgres_dsn, "host:b:2")
    try:
        assert not a.wait(0.05)
        with psycopg.connect(postgres_dsn, autocommit=True) as sender:
            for _ in range(5):
                wake_host_pg(sender, "host:a:1")
        assert a.wait(2.0)
        assert not a.wait(0.05)  # the five were consumed in one round
        assert not b.wait(0.05)
        with psycopg.connect(postgres_dsn) as sender:  # in a transaction
            wake_host_pg(sender, "host:b:2")
            assert not b.wait(0.2)  # not before the sender commits
            sender.commit()
        assert b.wait(2.0)
        started = time.monotonic()
        b.wake()  # its own waiter, to stop it promptly
        assert b.wait(2.0)
        assert time.monotonic() - started < 2.0
    finally:
        a.close()
        b.close()
    assert not a.wait(0.01)  # closed: no error


def test_a_channel_name_is_a_valid_identifier_whatever_the_host_id() -> None:
    names = {channel_of(h) for h in ("x", "a" * 500, 'we"ird; drop', "ünï")}
    assert len(names) == 4
    assert all(len(n) <= 63 and n.isascii() and n.isidentifier() for n in names)


def test_a_channel_whose_connection_was_killed_listens_again_without_spinning(
    postgres_dsn: str,
) -> None:
    """A proxy reset, a server restart: the waiter makes a new connection (and
    says so with a wake, so the host reads what it missed), pausing between
    attempts while the server refuses, never returning at once in a loop."""
    channel = PostgresWakeChannel.listen(postgres_dsn, "host:c:3")
    try:
        assert channel._conn is not None
        pid = channel._conn.info.backend_pid
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert channel.wait(2.0)  # listening again: a round of catching up
        assert channel._conn is not None
        assert channel._conn.info.backend_pid != pid
        assert not channel.wait(0.05)
        with psycopg.connect(postgres_dsn, autocommit=True) as sender:
            wake_host_pg(sender, "host:c:3")
        assert channel.wait(2.0)  # the new connection hears its wakes
        # The server unreachable: each wait pauses (doubling) instead of spinning.
        channel._conninfo = "host=127.0.0.1 port=1 connect_timeout=1"
        channel._conn.close()
        started, waits = time.monotonic(), 0
        while time.monotonic() - started < 1.0:
            assert not channel.wait(1.0)
            waits += 1
        assert waits <= 5, waits
    finally:
        channel.close()
