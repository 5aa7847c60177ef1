"""A pure Python model of the crash suite's workflows, without any fault.

Each model workflow is a generator twin of the real one in ``_workflows.py``: it
yields what the real one awaits (``Step``, ``Gather``, ``Sleep``, ``Receive``,
``Child``) and ``Model`` answers at once: a step with ``outcome`` (the same pure
function the real step runs), a timer when the model's clock passes it, a
receive with the first pending signal of its topic or, past its deadline, with
a timeout. So the model is always as far as its runs can get; the real system
catches up, and once it has settled, must be exactly where the model is.

Given a run's inputs, the signals it was sent (in acknowledgement order) and
when the clock moved, the model predicts every command the run issues (seq,
kind and name), what it waits on, which signals it has not consumed, and how
it ends.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Any

import attrs

from tests.crash import _stats
from tests.crash._workflows import (
    CHARGE,
    REFUND,
    RELEASE,
    RESERVE,
    SHIP,
    WORK,
    FatalStepError,
    outcome,
)

__all__ = ["Command", "Ending", "Model", "ModelRun"]

Command = tuple[int, str, str | None]  # (seq, kind, name), as history holds it


@attrs.frozen
class Step:
    name: str
    label: str
    value: int
    fate: str


@attrs.frozen
class Gather:
    steps: tuple[Step, ...]  # with return_exceptions=True


@attrs.frozen
class Sleep:
    seconds: float


@attrs.frozen
class Receive:
    topic: str
    timeout: float | None


@attrs.frozen
class Child:
    workflow: str
    args: list[Any]
    child_id: str


Request = Step | Gather | Sleep | Receive | Child
Leaf = Step | Sleep | Receive | Child


class StepFailedM(Exception):
    def __init__(self, step: str, seq: int) -> None:
        super().__init__(step, seq)
        self.step = step
        self.seq = seq


class TimedOutM(Exception):
    pass


class ChildFailedM(Exception):
    pass


@attrs.frozen
class Ending:
    """How a run ends: ``completed`` with ``result``, or ``failed`` with an
    error of type ``error_type`` whose message holds ``error_text``."""

    status: str
    result: Any = None
    error_type: str | None = None
    error_text: str | None = None


Workflow = Generator[Request, Any, Any]
Answer = tuple[Any, BaseException | None]  # what resumes a run: (value, error)


# -- the model workflows --------------------------------------------------------------


def pipeline(run_id: str, x: int, fates: list[str], pause: float) -> Workflow:
    a = yield Step(WORK, "a", x, fates[0])
    yield Sleep(pause)
    parts = yield Gather((Step(WORK, "b", a, fates[1]), Step(WORK, "c", a, fates[2])))
    yield Sleep(pause)
    return {"a": a, "parts": [p if isinstance(p, int) else "failed" for p in parts]}


def collector(
    run_id: str, x: int, count: int, timeout: float, fates: list[str]
) -> Workflow:
    items: list[int | None] = []
    for _ in range(count):
        try:
            items.append((yield Receive("item", timeout)))
        except TimedOutM:
            items.append(None)
    done = yield Receive("done", None)
    value = x + sum(item for item in items if item is not None) + done
    try:
        total = yield Step(WORK, "total", value, fates[0])
    except StepFailedM:
        total = None
    return {"items": items, "done": done, "total": total}


def child(run_id: str, x: int, fates: list[str], pause: float) -> Workflow:
    a = yield Step(WORK, "child-a", x, fates[0])
    yield Sleep(pause)
    b = yield Step(WORK, "child-b", a, fates[1])
    return a + b


def parent(
    run_id: str, x: int, fates: list[str], pause: float, timeout: float
) -> Workflow:
    a = yield Step(WORK, "parent", x, fates[0])
    try:
        kid = yield Child(
            "tests.crash.child", [a, fates[1:3], pause], f"{run_id}.child"
        )
    except ChildFailedM:
        kid = "failed"
    try:
        go = yield Receive("go", timeout)
    except TimedOutM:
        go = None
    return {"a": a, "child": kid, "go": go}


def booking(run_id: str, x: int, fates: list[str], timeout: float) -> Workflow:
    compensations: list[Step] = []
    try:
        held = yield Step(RESERVE, "reserve", x, fates[0])
        compensations.append(Step(RELEASE, "release", held, fates[3]))
        paid = yield Step(CHARGE, "charge", held, fates[1])
        compensations.append(Step(REFUND, "refund", paid, fates[4]))
        extra = yield Receive("approve", timeout)
        sent = yield Step(SHIP, "ship", paid + extra, fates[2])
    except (StepFailedM, TimedOutM) as error:
        for compensation in reversed(compensations):
            with contextlib.suppress(StepFailedM):  # recorded; the others run
                yield compensation
        undone = error.step if isinstance(error, StepFailedM) else "approve"
        return {"undone": undone}
    return {"shipped": sent}


MODELS: dict[str, Callable[..., Workflow]] = {
    "tests.crash.pipeline": pipeline,
    "tests.crash.collector": collector,
    "tests.crash.child": child,
    "tests.crash.parent": parent,
    "tests.crash.booking": booking,
}

TOPICS: dict[str, tuple[str, ...]] = {
    "tests.crash.pipeline": (),
    "tests.crash.collector": ("item", "done"),
    "tests.crash.child": (),
    "tests.crash.parent": ("go",),
    "tests.crash.booking": ("approve",),
}


# -- the engine ---------------------------------------------------------------------


@attrs.define
class ModelRun:
    run_id: str
    workflow: str
    args: list[Any]
    parent_id: str | None
    code: Workflow
    started: bool = False
    next_seq: int = 1
    commands: list[Command] = attrs.Factory(list)
    # What the code awaits, with the seqs its leaves were given.
    wait: Request | None = None
    wait_seqs: tuple[int, ...] = ()
    due: datetime | None = None  # when the awaited timer or receive ends
    pending: dict[str, deque[tuple[str, Any]]] = attrs.Factory(dict)
    consumed: list[str] = attrs.Factory(list)
    ending: Ending | None = None

    @property
    def finished(self) -> bool:
        return self.ending is not None

    def waiting_on(self) -> list[Command]:
        """The open commands: what the (unfinished) run waits on."""
        if self.ending is not None or self.wait is None:
            return []
        leaves = self.wait.steps if isinstance(self.wait, Gather) else (self.wait,)
        return [
            _command(seq, leaf)
            for seq, leaf in zip(self.wait_seqs, leaves, strict=True)
        ]

    def pending_ids(self) -> dict[str, list[str]]:
        return {
            topic: [signal_id for signal_id, _ in queue]
            for topic, queue in self.pending.items()
            if queue
        }


class Model:
    """The fault-free runs, stepped by the same inputs as the real system."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.runs: dict[str, ModelRun] = {}

    def spawn(self, run_id: str, workflow: str, args: list[Any]) -> None:
        self._add(run_id, workflow, args, None)
        self._settle()

    def signal(self, run_id: str, topic: str, payload: Any, signal_id: str) -> bool:
        """Deliver a signal (acknowledged by the real run); False if the model's
        run has ended (it would consume nothing more)."""
        run = self.runs[run_id]
        if run.finished:
            return False
        run.pending.setdefault(topic, deque()).append((signal_id, payload))
        self._settle()
        return True

    def next_due(self) -> datetime | None:
        dues = [r.due for r in self.runs.values() if not r.finished and r.due]
        return min(dues, default=None)

    def advance_to(self, when: datetime) -> None:
        """Move the clock to ``when``, ending each timer and receive deadline
        due on the way at its own time."""
        while (due := self.next_due()) is not None and due <= when:
            self.now = max(self.now, due)
            self._settle()
        self.now = max(self.now, when)

    def unfinished(self) -> list[ModelRun]:
        return [run for run in self.runs.values() if not run.finished]

    # -- driving the generators --------------------------------------------------

    def _add(
        self, run_id: str, workflow: str, args: list[Any], parent_id: str | None
    ) -> None:
        code = MODELS[workflow](run_id, *args)
        self.runs[run_id] = ModelRun(run_id, workflow, list(args), parent_id, code)

    def _settle(self) -> None:
        """Resume every run that can go on, until none can."""
        moved = True
        while moved:
            moved = False
            for run in list(self.runs.values()):
                while not run.finished and self._resume(run):
                    moved = True

    def _resume(self, run: ModelRun) -> bool:
        answer = self._answer(run)
        if answer is None:
            return False
        value, error = answer
        run.started, run.wait, run.wait_seqs, run.due = True, None, (), None
        try:
            request = run.code.throw(error) if error else run.code.send(value)
        except StopIteration as stop:
            run.ending = Ending("completed", stop.value)
        except StepFailedM as failed:
            text = f"step {failed.step!r} at seq {failed.seq}"
            run.ending = Ending("failed", error_type="StepFailed", error_text=text)
        else:
            self._issue(run, request)
        return True

    def _issue(self, run: ModelRun, request: Request) -> None:
        leaves = request.steps if isinstance(request, Gather) else (request,)
        seqs = []
        for leaf in leaves:
            seq, run.next_seq = run.next_seq, run.next_seq + 1
            seqs.append(seq)
            run.commands.append(_command(seq, leaf))
            if isinstance(leaf, Sleep):
                run.due = self.now + timedelta(seconds=leaf.seconds)
            elif isinstance(leaf, Receive) and leaf.timeout is not None:
                run.due = self.now + timedelta(seconds=leaf.timeout)
            elif isinstance(leaf, Child):
                self._add(leaf.child_id, leaf.workflow, leaf.args, run.run_id)
        run.wait, run.wait_seqs = request, tuple(seqs)

    def _answer(self, run: ModelRun) -> Answer | None:
        """What resumes the run now: ``(value, error)``, or None if it waits."""
        if not run.started:
            return None, None
        request = run.wait
        assert request is not None
        answers: dict[type, Callable[[ModelRun, Any], Answer | None]] = {
            Step: self._step_answer,
            Gather: self._gather_answer,
            Sleep: self._sleep_answer,
            Receive: self._receive_answer,
            Child: self._child_answer,
        }
        return answers[type(request)](run, request)

    def _step_answer(self, run: ModelRun, step: Step) -> Answer:
        return _outcome(step, run.wait_seqs[0])

    def _gather_answer(self, run: ModelRun, gather: Gather) -> Answer:
        answers = [
            _outcome(step, seq)
            for step, seq in zip(gather.steps, run.wait_seqs, strict=True)
        ]
        return [error or value for value, error in answers], None

    def _sleep_answer(self, run: ModelRun, sleep: Sleep) -> Answer | None:
        assert run.due is not None
        return (None, None) if self.now >= run.due else None

    def _child_answer(self, run: ModelRun, child: Child) -> Answer | None:
        ending = self.runs[child.child_id].ending
        if ending is None:
            return None
        if ending.status == "completed":
            return ending.result, None
        return None, ChildFailedM(child.child_id)

    def _receive_answer(self, run: ModelRun, request: Receive) -> Answer | None:
        queue = run.pending.get(request.topic)
        if queue:
            signal_id, payload = queue.popleft()
            run.consumed.append(signal_id)
            return payload, None
        if run.due is not None and self.now >= run.due:
            _stats.count("model: receives that timed out")
            return None, TimedOutM(request.topic)
        return None


def _outcome(step: Step, seq: int) -> Answer:
    try:
        return outcome(step.name, step.label, step.value, step.fate), None
    except FatalStepError:
        _stats.count("fault: steps failed for good (by fate)")
        return None, StepFailedM(step.name, seq)


def _command(seq: int, leaf: Leaf) -> Command:
    if isinstance(leaf, Step):
        return seq, "step", leaf.name
    if isinstance(leaf, Sleep):
        return seq, "timer", None
    if isinstance(leaf, Receive):
        return seq, "receive", leaf.topic
    return seq, "child", leaf.workflow
