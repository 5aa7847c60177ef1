"""``actors.Audit``: typed histories, time travel, the log, a live follow, verify."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from actors import (
    ActorSystem,
    Audit,
    LogEntry,
    ManualClock,
    Replayer,
    RunStatus,
    RunSummary,
    UnknownRunError,
    VerifyStage,
    VersionOutOfRangeError,
    WorkflowContext,
    WorkflowDefinition,
)
from aggregates import (
    Completed,
    SignalAwaited,
    SignalConsumed,
    SignalReceived,
    Started,
    StepCompleted,
    StepScheduled,
    ValueRecorded,
    WorkflowRun,
)
from tests.cli import _flows as flows


def test_history_is_the_runs_events_typed_and_in_version_order(shop: Path) -> None:
    with Audit(shop) as audit:
        events = audit.history("order-1")
    kinds = [type(event) for event in events]
    assert kinds == [
        Started,
        StepScheduled,
        StepCompleted,
        ValueRecorded,
        SignalAwaited,
        SignalReceived,
        SignalConsumed,
        StepScheduled,
        StepCompleted,
        Completed,
    ]
    assert [event.originator_version for event in events] == list(range(1, 11))
    assert all(event.originator_id == "order-1" for event in events)
    started = events[0]
    assert isinstance(started, Started)
    assert (started.name, started.args) == ("tests.cli.order", ["o-1", 120])


def test_state_at_each_version_is_the_run_rebuilt_from_that_many_events(
    shop: Path,
) -> None:
    with Audit(shop) as audit:
        events = audit.history("order-1")
        states = [audit.state("order-1", at=v) for v in range(1, len(events) + 1)]
        now = audit.state("order-1")
    for version, run in enumerate(states, start=1):
        assert isinstance(run, WorkflowRun)
        assert run.version == version
        assert run.modified_on == events[version - 1].timestamp
    assert [run.next_seq for run in states] == [1, 2, 2, 3, 4, 4, 4, 5, 5, 5]
    assert [run.status for run in states] == [RunStatus.RUNNING] * 9 + [
        RunStatus.COMPLETED
    ]
    assert states[0].commands == ()
    assert states[2].outcome_at(1) is not None  # reserved at version 3
    assert states[5].pending_signals["approval"][0].payload == {"by": "ann"}
    assert not states[6].pending_signals  # consumed at version 7
    assert states[-1].result == now.result
    assert now.result["approved_by"] == "ann"
    assert vars(states[-1]) == vars(now)


def test_state_out_of_range_names_the_versions_the_run_has(shop: Path) -> None:
    with Audit(shop) as audit:
        for bad in (0, 11, -3):
            with pytest.raises(VersionOutOfRangeError, match="from 1 to 10") as raised:
                audit.state("order-1", at=bad)
            assert (raised.value.version, raised.value.last) == (bad, 10)


def test_an_unknown_run_is_an_unknown_run_error(shop: Path) -> None:
    with Audit(shop) as audit:
        with pytest.raises(UnknownRunError, match="order-9"):
            audit.history("order-9")
        with pytest.raises(UnknownRunError):
            audit.state("order-9", at=1)
        with pytest.raises(UnknownRunError):
            audit.history("chronik:unfinished-runs")  # a stream, not a run


def test_runs_are_summarised_in_start_order_and_filtered_by_status(
    shop: Path,
) -> None:
    with Audit(shop) as audit:
        runs = audit.runs()
        assert runs == [audit.run(run.workflow_id) for run in runs]
        assert [run.workflow_id for run in audit.runs("running")] == ["order-2"]
        failed = audit.runs(RunStatus.FAILED)
    assert [(run.workflow_id, run.status) for run in runs] == [
        ("order-1", RunStatus.COMPLETED),
        ("order-2", RunStatus.RUNNING),
        ("broken-1", RunStatus.FAILED),
        ("fee-1", RunStatus.COMPLETED),
    ]
    first = runs[0]
    assert isinstance(first, RunSummary)
    assert (first.workflow, first.version, first.parent_id) == (
        "tests.cli.order",
        10,
        None,
    )
    assert first.ended_at is not None
    assert runs[1].ended_at is None
    assert [run.workflow for run in failed] == ["tests.cli.broken"]


def test_the_log_from_a_position_gives_every_stream_typed(shop: Path) -> None:
    with Audit(shop) as audit:
        entries = list(audit.log())
        later = list(audit.log(start=5, stop=7))
        started = list(audit.log(topics=[Started.TOPIC]))
        last = audit.last_position()
    assert [entry.position for entry in entries] == list(range(1, last + 1))
    assert later == entries[4:7]
    assert all(isinstance(entry, LogEntry) for entry in entries)
    index = [e for e in entries if e.stream_id == "chronik:unfinished-runs"]
    assert index, "the index of unfinished runs is in the log"
    assert all(e.event is not None and e.run_event is None for e in index)
    assert [e.stream_id for e in started] == ["order-1", "order-2", "broken-1", "fee-1"]
    assert all(isinstance(e.run_event, Started) for e in started)


def test_export_documents_tag_values_json_lacks(shop: Path) -> None:
    with Audit(shop) as audit:
        documents = list(audit.export(start=2))
        last = audit.last_position()
    assert [d["position"] for d in documents] == list(range(2, last + 1))
    completed = next(
        d for d in documents if d["stream"] == "order-1" and d["version"] == 10
    )
    assert completed["topic"] == Completed.TOPIC
    assert set(completed["state"]["result"]["at"]) == {"$datetime"}
    assert completed["timestamp"] == completed["state"]["result"]["at"]


def test_follow_receives_an_event_committed_after_it_started(
    journal_location: str,
) -> None:
    path = journal_location  # on PostgreSQL, woken by the recorder's NOTIFY
    with (
        ActorSystem.open(path, clock=ManualClock(), idle_timeout=None) as system,
        Audit(system) as audit,
    ):
        system.spawn(flows.ticker, 1, id="before").result(timeout=5)
        start = audit.last_position() + 1
        received: list[LogEntry] = []

        def collect() -> None:
            with audit.follow(topics=[Started.TOPIC, Completed.TOPIC]) as follow:
                for entry in follow:
                    received.append(entry)
                    if isinstance(entry.event, Completed):
                        return

        reader = threading.Thread(target=collect)
        reader.start()
        system.spawn(flows.ticker, 2, id="after").result(timeout=5)
        reader.join(timeout=5)
        assert not reader.is_alive()
    assert [(e.stream_id, type(e.event)) for e in received] == [
        ("after", Started),
        ("after", Completed),
    ]
    assert all(e.position >= start for e in received)


def test_follow_from_a_position_replays_the_log_then_stops_when_asked(
    shop: Path,
) -> None:
    with Audit(shop) as audit:
        follow = audit.follow(start=3)
        first = [next(follow) for _ in range(3)]
        follow.stop()
        assert list(follow) == []
    assert [entry.position for entry in first] == [3, 4, 5]


def test_verify_checks_the_chains_and_replays_each_run_reporting_progress(
    shop: Path,
) -> None:
    seen: list[tuple[VerifyStage, int, int | None]] = []
    with Audit(shop) as audit:
        report = audit.verify(progress=lambda *args: seen.append(args))
        last = audit.last_position()
    assert report.ok, report.summary()
    assert report.problems == ()
    assert report.chain.notifications == last
    assert [r.workflow_id for r in report.replay.results] == [
        "order-1",
        "order-2",
        "broken-1",
        "fee-1",
    ]
    replayed = [(done, total) for stage, done, total in seen if stage == "replay"]
    assert replayed == [(n, 4) for n in range(5)]
    assert any(stage == "chain" for stage, _, _ in seen)


async def _changed_fee(ctx: WorkflowContext, amount: int) -> Any:
    await ctx.call(flows.reserve, "fee")  # a new step before the charge
    return await ctx.call(flows.charge, "fee", amount)


def test_verify_against_changed_code_names_the_run_that_no_longer_replays(
    shop: Path,
) -> None:
    changed_fee = WorkflowDefinition(_changed_fee, "tests.cli.fee")  # unregistered
    changed = Replayer([flows.order, flows.broken, changed_fee])
    with Audit(shop) as audit:
        report = audit.verify(replayer=changed)
        one = audit.verify("order-1", replayer=changed)
    assert not report.ok
    assert report.first_bad is None  # the journal itself is sound
    (problem,) = report.problems
    assert problem.startswith("replay: fee-1 (tests.cli.fee): non-deterministic")
    assert "verification" not in report.summary().splitlines()[0]
    assert one.ok
    assert [r.workflow_id for r in one.replay.results] == ["order-1"]
