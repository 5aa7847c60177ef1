"""Following the log live on both backends (issue 14): the same notifications,
in the same order, as LMDB's ``JournalReader.follow`` gives; on PostgreSQL woken
by the recorder's ``NOTIFY``, with polling when its connection is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import Notification

from actors import ActorSystem, Audit, ManualClock
from aggregates import Completed, Started
from journal import (
    JournalClosedError,
    JournalPathError,
    PostgresLocation,
    open_reader,
    parse_location,
)
from journal._pg_follow import SAFETY_POLL, PostgresFollow
from tests._postgres_server import connection_settings, journal_url
from tests.cli import _flows as flows


def _row(n: Notification) -> tuple[Any, ...]:
    return (n.id, n.originator_id, n.originator_version, n.topic, n.state)


def _take(live: Iterator[Notification], count: int) -> list[Notification]:
    return [next(live) for _ in range(count)]


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def host(journal_location: str) -> Iterator[ActorSystem]:
    """A system on a fresh journal of each backend, with two runs done."""
    with ActorSystem.open(
        journal_location, clock=ManualClock(), idle_timeout=None
    ) as system:
        system.spawn(flows.ticker, 1, id="first").result(timeout=10)
        system.spawn(flows.ticker, 2, id="second").result(timeout=10)
        yield system


def test_follow_gives_the_log_as_it_is_then_each_commit_in_log_order(
    host: ActorSystem,
) -> None:
    with open_reader(host.path) as reader:
        before = [_row(n) for n in reader.notifications()]
        with reader.follow() as live:
            replayed = [_row(n) for n in _take(live, len(before))]
            host.spawn(flows.ticker, 3, id="third").result(timeout=10)
            last = reader.max_notification_id()
            assert last is not None
            committed = [_row(n) for n in _take(live, last - len(before))]
        assert list(live) == []  # stopped by leaving its block
        after = [
            _row(n)
            for n in reader.notifications(start=len(before) + 1)
            if n.id <= last  # not what the host committed since
        ]
    assert replayed == before
    assert [row[0] for row in before] == list(range(1, len(before) + 1))
    assert committed == after
    assert {row[1] for row in committed} >= {"third"}


def test_follow_from_a_position_with_topics_gives_those_events_only(
    host: ActorSystem,
) -> None:
    topics = [Started.TOPIC, Completed.TOPIC]
    with open_reader(host.path) as reader:
        expected = [_row(n) for n in reader.notifications(start=3, topics=topics)]
        live = reader.follow(start=3, topics=topics)
        with live:
            first = [_row(n) for n in _take(live, len(expected))]
            host.spawn(flows.ticker, 1, id="third").result(timeout=10)
            new = [(n.originator_id, n.topic) for n in _take(live, 2)]
    assert first == expected
    assert [(row[1], row[3]) for row in first] == [
        ("first", Completed.TOPIC),  # "first" started at position 1
        ("second", Started.TOPIC),
        ("second", Completed.TOPIC),
    ]
    assert new == [("third", Started.TOPIC), ("third", Completed.TOPIC)]


def test_follow_from_a_position_replays_then_stops_when_asked(
    host: ActorSystem,
) -> None:
    with Audit(host) as audit:
        follow = audit.follow(start=3)
        first = [next(follow) for _ in range(3)]
        follow.stop()
        assert list(follow) == []
    assert [entry.position for entry in first] == [3, 4, 5]


def test_a_commit_wakes_a_follower_at_once_not_at_its_next_poll(
    host: ActorSystem,
) -> None:
    """On PostgreSQL a follower that only polled would see it after
    ``SAFETY_POLL`` seconds; the ``NOTIFY`` brings it within a moment."""
    with open_reader(host.path) as reader, reader.follow() as live:
        _take(live, reader.max_notification_id() or 0)
        got = threading.Event()
        threading.Thread(target=lambda: (next(live), got.set()), daemon=True).start()
        began = time.monotonic()
        host.spawn(flows.ticker, 1, id="third")
        assert got.wait(timeout=SAFETY_POLL / 2)
    assert time.monotonic() - began < 2.0


# -- PostgreSQL only ---------------------------------------------------------------


@pytest.fixture
def pg_host(postgres_dsn: str) -> Iterator[ActorSystem]:
    with (
        journal_url(postgres_dsn) as url,
        ActorSystem.open(url, clock=ManualClock(), idle_timeout=None) as system,
    ):
        system.spawn(flows.ticker, 1, id="first").result(timeout=10)
        yield system


def test_a_follower_whose_connection_is_lost_polls_and_listens_again(
    pg_host: ActorSystem, postgres_dsn: str
) -> None:
    with open_reader(pg_host.path) as reader:
        live = reader.follow(topics=[Started.TOPIC])  # one a run
        assert isinstance(live, PostgresFollow)
        with live:
            assert next(live).originator_id == "first"
            listener = live._listener
            assert listener is not None
            settings = connection_settings(postgres_dsn)
            with psycopg.connect(autocommit=True, **settings) as admin:  # type: ignore[arg-type]
                admin.execute(
                    "SELECT pg_terminate_backend(%s)", (listener.info.backend_pid,)
                )
            pg_host.spawn(flows.ticker, 1, id="after-loss").result(timeout=10)
            began = time.monotonic()
            lost = next(live)
            polled = time.monotonic() - began
            _wait_for(lambda: live._listener not in (None, listener))
            pg_host.spawn(flows.ticker, 1, id="relistened").result(timeout=10)
            began = time.monotonic()
            relistened = next(live)
            woken = time.monotonic() - began
    assert lost.originator_id == "after-loss"
    assert polled < SAFETY_POLL / 2  # a poll found it while not listening
    assert relistened.originator_id == "relistened"
    assert woken < SAFETY_POLL / 2  # a NOTIFY again, on the new connection


def test_following_a_closed_reader_ends_with_journal_closed_error(
    pg_host: ActorSystem,
) -> None:
    reader = open_reader(pg_host.path)
    reader.close()
    with reader.follow() as live, pytest.raises(JournalClosedError, match="is closed"):
        next(live)


def test_following_a_server_that_cannot_be_reached_says_so(
    pg_host: ActorSystem,
) -> None:
    with open_reader(pg_host.path) as reader:
        location = parse_location(pg_host.path)
        assert isinstance(location, PostgresLocation)
        gone = PostgresLocation(host="127.0.0.1", port=1, dbname=location.dbname)
        with pytest.raises(JournalPathError, match="cannot be reached") as raised:
            PostgresFollow(reader._events, gone)
    assert raised.value.path == gone.display
