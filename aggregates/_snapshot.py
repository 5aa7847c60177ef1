"""``RunSnapshot``: a workflow run's state at one version, so replay starts there."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

import attrs
from eventsourcing.domain import (
    BaseAggregate,
    CanSnapshotAggregate,
    MutableOrImmutableAggregate,
)
from eventsourcing.utils import get_topic

from aggregates._topics import public_topic

__all__ = ["RunSnapshot"]

# BaseAggregate's own bookkeeping: restored from the snapshot's header, not its state.
_NOT_STATE = frozenset({"_id", "_version", "_pending_events"})


@attrs.frozen(slots=False, kw_only=True)
class RunSnapshot(CanSnapshotAggregate[str]):
    """The aggregate's ``vars()`` as plain data, taken as of its last event.

    ``timestamp`` is the time of that last event (``modified_on``): taking a snapshot
    reads no clock, so the same history always gives the same snapshot.
    """

    originator_id: str
    originator_version: int
    timestamp: datetime
    topic: str
    state: dict[str, Any]

    TOPIC = "aggregates:RunSnapshot"

    @classmethod
    def take(cls, aggregate: MutableOrImmutableAggregate[str]) -> Self:
        # eventsourcing's own take() strips the bookkeeping attributes only from
        # UUID-keyed Aggregates and stamps the snapshot with the wall clock.
        if not isinstance(aggregate, BaseAggregate):
            msg = f"cannot snapshot {aggregate!r}: not an eventsourcing BaseAggregate"
            raise TypeError(msg)
        state = {k: v for k, v in vars(aggregate).items() if k not in _NOT_STATE}
        return cls(
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            timestamp=aggregate.modified_on,
            topic=get_topic(type(aggregate)),
            state=state,
        )


public_topic(RunSnapshot)
