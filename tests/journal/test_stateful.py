"""The LMDB recorders, driven step by step alongside eventsourcing's in-memory ones.

Each machine applies the same random operations to an LMDB recorder and to the
library's POPO recorder of the same kind, and checks after every step that both hold
exactly the same events, notifications and tracking positions.

The POPO recorders are a faithful oracle only inside the contract that real
applications keep, so the machines stay inside it: each stream's versions are
inserted in increasing order (POPO returns a stream's events in insertion order, not
version order), limits are positive (POPO treats ``limit=0`` as "no limit"), and no
str id is the text of a UUID id (POPO keys its streams by ``str(originator_id)``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Notification,
    StoredEvent,
    Tracking,
)
from eventsourcing.popo import POPOApplicationRecorder, POPOProcessRecorder
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from journal import (
    EventConflictError,
    Journal,
    JournalClosedError,
    JournalSettings,
    LMDBApplicationRecorder,
    LMDBProcessRecorder,
    TrackingConflictError,
)

StreamId = UUID | str

TOPICS = ("topic-a", "topic-b", "topic-c")
UPSTREAMS = ("upstream-a", "upstream-b")
MAX_BATCH = 5
MAX_GAP = 3
# The journal stores versions as signed 64-bit ints.
SMALLEST_VERSION = -(2**63)
LARGEST_VERSION = 2**63 - 1

# Short str ids can never be the 36-character text of a UUID; the long ones are
# near the journal's 500-byte limit for str ids.
str_ids = st.text(max_size=12) | st.integers(490, 500).map(lambda n: "s" * n)
originator_ids: st.SearchStrategy[StreamId] = st.uuids() | str_ids
# A stream's first version: where aggregates start, around zero (the key layout
# flips the sign bit, so negative versions must sort below positive ones), far up,
# or at either end of the range the journal stores.
first_versions = (
    st.integers(-3, 3)
    | st.integers(2**31, 2**62)
    | st.integers(SMALLEST_VERSION, SMALLEST_VERSION + 3)
    | st.integers(LARGEST_VERSION - 3, LARGEST_VERSION)
)
# Bounds of select_events beyond the storable range, which match everything or nothing.
outside_versions = st.sampled_from(
    (SMALLEST_VERSION - 2, SMALLEST_VERSION - 1, LARGEST_VERSION + 1, 2**64)
)
topics = st.sampled_from(TOPICS) | st.text(max_size=8)
# Mostly small states; sometimes tens of kilobytes, which LMDB keeps on overflow
# pages and which make the deliberately small map grow.
states = st.binary(max_size=16) | st.builds(
    lambda chunk, times: chunk * times,
    st.binary(min_size=1, max_size=4),
    st.integers(5_000, 15_000),
)


def event_rows(events: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    """Every field, with the types of the id and the state, so a str id never
    passes for a UUID (nor a bytearray for bytes)."""
    return [
        (
            type(e.originator_id),
            e.originator_id,
            e.originator_version,
            e.topic,
            type(e.state),
            e.state,
        )
        for e in events
    ]


def notification_rows(notifications: Sequence[Notification]) -> list[tuple[Any, ...]]:
    return [
        (n.id, *row)
        for n, row in zip(notifications, event_rows(notifications), strict=True)
    ]


class ApplicationRecordersAgree(RuleBasedStateMachine):
    """An ``LMDBApplicationRecorder`` behaves as eventsourcing's POPO recorder."""

    def __init__(self) -> None:
        super().__init__()
        self.path = tempfile.mkdtemp(prefix="chronik-stateful-")
        # No fsync (nothing here crashes, so durability is not under test) and the
        # smallest map, so that growing the map is exercised too.
        self.journal_settings = JournalSettings(
            path=self.path, map_size=256 * 1024, sync=False
        )
        self.journal = Journal.open(self.journal_settings)
        self.lmdb = self.lmdb_recorder(self.journal)
        self.popo = self.popo_recorder()
        # Invariant: versions[stream] lists the versions both recorders hold for
        # that stream, ascending; a stream is a key once it has an event. After the
        # initialize rule, there is always at least one stream.
        self.versions: dict[StreamId, list[int]] = {}

    def lmdb_recorder(self, journal: Journal) -> LMDBApplicationRecorder:
        return LMDBApplicationRecorder(journal)

    def popo_recorder(self) -> ApplicationRecorder:
        return POPOApplicationRecorder()

    def draw_tracking(self, data: st.DataObject) -> dict[str, Tracking]:
        """Keyword arguments for ``insert_events``: none for an application recorder."""
        return {}

    def teardown(self) -> None:
        self.journal.close()
        shutil.rmtree(self.path, ignore_errors=True)

    # -- drawing events ---------------------------------------------------------

    def draw_new_events(
        self, data: st.DataObject, min_size: int = 0
    ) -> list[StoredEvent]:
        """A batch of events that are all new, each stream's in increasing version
        order; streams are new or existing and interleave within the batch. A stream
        too near the largest version takes no more events."""
        count = data.draw(st.integers(min_size, MAX_BATCH), label="batch size")
        last = {stream: versions[-1] for stream, versions in self.versions.items()}
        events = []
        for _ in range(count):
            open_streams = [
                s for s, v in last.items() if v <= LARGEST_VERSION - MAX_GAP
            ]
            if bool(open_streams) and data.draw(
                st.booleans(), label="to an existing stream"
            ):
                stream = data.draw(st.sampled_from(open_streams), label="stream")
            else:
                stream = data.draw(
                    originator_ids.filter(lambda new: new not in last),
                    label="new stream",
                )
            if stream in last:
                version = last[stream] + data.draw(st.integers(1, MAX_GAP), label="gap")
            else:
                version = data.draw(first_versions, label="first version")
            last[stream] = version
            events.append(
                StoredEvent(
                    originator_id=stream,
                    originator_version=version,
                    topic=data.draw(topics, label="topic"),
                    state=data.draw(states, label="state"),
                )
            )
        return events

    def remember(
        self, events: Sequence[StoredEvent], tracking: Tracking | None
    ) -> None:
        """Note what an insert stored (an application recorder ignores tracking)."""
        for event in events:
            self.versions.setdefault(event.originator_id, []).append(
                event.originator_version
            )

    def assert_both_refuse(
        self, events: Sequence[StoredEvent], **kwargs: Any
    ) -> IntegrityError:
        with pytest.raises(IntegrityError) as refused:
            self.lmdb.insert_events(events, **kwargs)
        with pytest.raises(IntegrityError):
            self.popo.insert_events(events, **kwargs)
        return refused.value

    def insert_into_both(
        self, events: Sequence[StoredEvent], kwargs: dict[str, Tracking]
    ) -> None:
        lmdb_ids = self.lmdb.insert_events(events, **kwargs)
        popo_ids = self.popo.insert_events(events, **kwargs)
        assert list(lmdb_ids or ()) == list(popo_ids or ())
        self.remember(events, kwargs.get("tracking"))

    # -- rules ----------------------------------------------------------------------

    # Rules are picked uniformly and most of them only read or are refused, so every
    # run starts with some events to read and to clash with.
    @initialize(data=st.data())
    def start_with_a_first_batch(self, data: st.DataObject) -> None:
        self.insert_into_both(self.draw_new_events(data, min_size=1), {})

    @rule(data=st.data())
    def insert_new_events(self, data: st.DataObject) -> None:
        self.insert_into_both(self.draw_new_events(data), self.draw_tracking(data))

    @rule(data=st.data())
    def insert_a_version_already_stored(self, data: st.DataObject) -> None:
        events = self.draw_new_events(data)
        stream = data.draw(
            st.sampled_from(list(self.versions)), label="clashing stream"
        )
        clash = StoredEvent(
            originator_id=stream,
            originator_version=data.draw(st.sampled_from(self.versions[stream])),
            topic=data.draw(topics, label="clashing topic"),
            state=data.draw(states, label="clashing state"),
        )
        events.insert(data.draw(st.integers(0, len(events)), label="at"), clash)
        error = self.assert_both_refuse(events, **self.draw_tracking(data))
        assert isinstance(error, EventConflictError)
        assert (error.originator_id, error.originator_version) == (
            clash.originator_id,
            clash.originator_version,
        )

    @rule(data=st.data())
    def insert_a_batch_holding_one_version_twice(self, data: st.DataObject) -> None:
        events = self.draw_new_events(data, min_size=1)
        original = data.draw(st.sampled_from(events), label="duplicated")
        twin = StoredEvent(
            originator_id=original.originator_id,
            originator_version=original.originator_version,
            topic=data.draw(topics, label="twin topic"),
            state=data.draw(states, label="twin state"),
        )
        events.insert(data.draw(st.integers(0, len(events)), label="at"), twin)
        error = self.assert_both_refuse(events, **self.draw_tracking(data))
        assert isinstance(error, EventConflictError)
        assert (error.originator_id, error.originator_version) == (
            original.originator_id,
            original.originator_version,
        )

    @rule(data=st.data(), desc=st.booleans(), limit=st.none() | st.integers(1, 6))
    def select_events(self, data: st.DataObject, desc: bool, limit: int | None) -> None:
        if data.draw(st.booleans(), label="a stream with events"):
            stream = data.draw(st.sampled_from(list(self.versions)), label="stream")
        else:
            stream = data.draw(originator_ids, label="stream")
        near = st.sampled_from(self.versions.get(stream, [0])).flatmap(
            lambda version: st.integers(version - 1, version + 1)
        )
        gt = data.draw(st.none() | near | outside_versions, label="gt")
        lte = data.draw(st.none() | near | outside_versions, label="lte")
        found, expected = (
            recorder.select_events(stream, gt=gt, lte=lte, desc=desc, limit=limit)
            for recorder in (self.lmdb, self.popo)
        )
        assert event_rows(found) == event_rows(expected)

    @rule(
        data=st.data(),
        limit=st.integers(1, 8),
        wanted=st.lists(st.sampled_from(TOPICS), max_size=2, unique=True),
        inclusive_of_start=st.booleans(),
    )
    def select_notifications(
        self,
        data: st.DataObject,
        limit: int,
        wanted: list[str],
        inclusive_of_start: bool,
    ) -> None:
        beyond = (self.popo.max_notification_id() or 0) + 2
        start = data.draw(st.none() | st.integers(-1, beyond), label="start")
        stop = data.draw(st.none() | st.integers(-1, beyond), label="stop")
        found, expected = (
            recorder.select_notifications(
                start, limit, stop, wanted, inclusive_of_start=inclusive_of_start
            )
            for recorder in (self.lmdb, self.popo)
        )
        assert notification_rows(found) == notification_rows(expected)

    @rule()
    def close_and_reopen_the_journal(self) -> None:
        stale = self.lmdb
        self.journal.close()
        assert self.journal.closed
        with pytest.raises(JournalClosedError):
            stale.max_notification_id()
        self.journal = Journal.open(self.journal_settings)
        self.lmdb = self.lmdb_recorder(self.journal)

    @rule()
    def read_through_a_second_handle_on_the_same_path(self) -> None:
        second = Journal.open(self.journal_settings)
        try:
            other = self.lmdb_recorder(second)
            beyond = (self.popo.max_notification_id() or 0) + 1
            assert notification_rows(
                other.select_notifications(None, beyond)
            ) == notification_rows(self.popo.select_notifications(None, beyond))
        finally:
            second.close()
        # The environment is shared and counted: the first handle still works.
        assert not self.journal.closed
        self.lmdb.max_notification_id()

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def both_hold_the_same_application_sequence(self) -> None:
        assert self.lmdb.max_notification_id() == self.popo.max_notification_id()
        beyond = (self.popo.max_notification_id() or 0) + 1
        assert notification_rows(
            self.lmdb.select_notifications(None, beyond)
        ) == notification_rows(self.popo.select_notifications(None, beyond))

    @invariant()
    def both_hold_the_same_streams(self) -> None:
        for stream in self.versions:
            assert event_rows(self.lmdb.select_events(stream)) == event_rows(
                self.popo.select_events(stream)
            )


class ProcessRecordersAgree(ApplicationRecordersAgree):
    """An ``LMDBProcessRecorder`` behaves as eventsourcing's POPO process recorder:
    events and tracking positions commit together or not at all."""

    lmdb: LMDBProcessRecorder
    popo: POPOProcessRecorder

    def __init__(self) -> None:
        super().__init__()
        # Invariant: tracked[name] is the position both recorders hold for name.
        self.tracked: dict[str, int] = {}

    def lmdb_recorder(self, journal: Journal) -> LMDBProcessRecorder:
        return LMDBProcessRecorder(journal)

    def popo_recorder(self) -> POPOProcessRecorder:
        return POPOProcessRecorder()

    def draw_tracking(self, data: st.DataObject) -> dict[str, Tracking]:
        if not data.draw(st.booleans(), label="with tracking"):
            return {}
        name = data.draw(st.sampled_from(UPSTREAMS), label="upstream")
        return {"tracking": Tracking(name, self.draw_fresh_position(data, name))}

    def draw_fresh_position(self, data: st.DataObject, name: str) -> int:
        return self.tracked.get(name, 0) + data.draw(st.integers(1, 3), label="advance")

    def remember(
        self, events: Sequence[StoredEvent], tracking: Tracking | None
    ) -> None:
        super().remember(events, tracking)
        if tracking is not None:
            self.tracked[tracking.application_name] = tracking.notification_id

    @precondition(lambda self: self.tracked)
    @rule(data=st.data())
    def insert_new_events_with_a_stale_position(self, data: st.DataObject) -> None:
        events = self.draw_new_events(data)
        name = data.draw(st.sampled_from(sorted(self.tracked)), label="upstream")
        stale = data.draw(st.integers(1, self.tracked[name]), label="stale position")
        error = self.assert_both_refuse(events, tracking=Tracking(name, stale))
        assert isinstance(error, TrackingConflictError)
        assert (error.application_name, error.notification_id, error.current) == (
            name,
            stale,
            self.tracked[name],
        )

    @rule(data=st.data(), name=st.sampled_from(UPSTREAMS))
    def insert_tracking_alone(self, data: st.DataObject, name: str) -> None:
        if name in self.tracked and data.draw(st.booleans(), label="stale"):
            stale = Tracking(name, data.draw(st.integers(1, self.tracked[name])))
            with pytest.raises(TrackingConflictError):
                self.lmdb.insert_tracking(stale)
            with pytest.raises(IntegrityError):
                self.popo.insert_tracking(stale)
            return
        fresh = Tracking(name, self.draw_fresh_position(data, name))
        self.lmdb.insert_tracking(fresh)
        self.popo.insert_tracking(fresh)
        self.tracked[name] = fresh.notification_id

    @invariant()
    def both_hold_the_same_tracking_positions(self) -> None:
        for name in (*UPSTREAMS, "never-tracked"):
            assert self.lmdb.max_tracking_id(name) == self.popo.max_tracking_id(name)
            assert self.lmdb.max_tracking_id(name) == self.tracked.get(name)


# Only the run length is set here: max_examples comes from the profile loaded by
# tests/conftest.py (40 by default, 1000 with CHRONIK_LONG=1).
_STEPS = 50

TestApplicationRecordersAgree = ApplicationRecordersAgree.TestCase
TestApplicationRecordersAgree.settings = settings(stateful_step_count=_STEPS)

TestProcessRecordersAgree = ProcessRecordersAgree.TestCase
TestProcessRecordersAgree.settings = settings(stateful_step_count=_STEPS)


@pytest.mark.parametrize(
    ("gt", "lte"),
    [
        (LARGEST_VERSION, None),
        (LARGEST_VERSION - 1, LARGEST_VERSION + 1),
        (SMALLEST_VERSION - 1, None),
        (None, SMALLEST_VERSION - 1),
        (SMALLEST_VERSION - 1, LARGEST_VERSION + 1),
    ],
)
def test_selecting_events_around_the_ends_of_the_version_range_agrees_with_popo(
    gt: int | None, lte: int | None
) -> None:
    # Regression: version_bytes(gt + 1) once raised StreamIdError for these bounds.
    path = tempfile.mkdtemp(prefix="chronik-stateful-")
    journal = Journal.open(JournalSettings(path=path, sync=False))
    try:
        stream = uuid4()
        events = [
            StoredEvent(stream, version, "topic-a", b"")
            for version in (SMALLEST_VERSION, 0, LARGEST_VERSION)
        ]
        recorders = (LMDBApplicationRecorder(journal), POPOApplicationRecorder())
        for recorder in recorders:
            recorder.insert_events(events)
        found, expected = (
            recorder.select_events(stream, gt=gt, lte=lte) for recorder in recorders
        )
        assert event_rows(found) == event_rows(expected)
    finally:
        journal.close()
        shutil.rmtree(path, ignore_errors=True)
