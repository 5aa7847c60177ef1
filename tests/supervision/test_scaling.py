"""A supervisor's work per message does not grow with its number of children
(the runtime puts every live workflow run under one supervisor). Work is counted,
not timed: the ChildInfo records built and the scans over all children while one
child is started, restarted and ends, with 10 and with 2,000 live siblings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from supervision import Restart, Strategy, SupervisorFlags, SupervisorRef
from supervision._children import Child, Children
from supervision._info import ChildInfo
from supervision._tree import Path, Tree
from tests.supervision._support import STOP, Crash, inject, probe

Start = Callable[..., SupervisorRef]
FEW, MANY = 10, 2_000


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts of ChildInfo built, of scans over a supervisor's children, and of
    trees assembled, from now on."""
    counts: Counter[str] = Counter()
    info, scan, reverse = Child.info, Children.__iter__, Children.__reversed__
    assemble = Tree._assemble

    def counted_info(child: Child) -> ChildInfo:
        counts["ChildInfo built"] += 1
        return info(child)

    def counted_scan(children: Children) -> Iterator[Child]:
        counts["scans of all children"] += 1
        return scan(children)

    def counted_reverse(children: Children) -> Iterator[Child]:
        counts["scans of all children"] += 1
        return reverse(children)

    def counted_assemble(tree: Tree, path: Path, owner: str | None) -> object:
        counts["trees assembled"] += 1
        return assemble(tree, path, owner)

    monkeypatch.setattr(Child, "info", counted_info)
    monkeypatch.setattr(Children, "__iter__", counted_scan)
    monkeypatch.setattr(Children, "__reversed__", counted_reverse)
    monkeypatch.setattr(Tree, "_assemble", counted_assemble)
    return counts


def one_child_lifetime(
    start: Start, strategy: Strategy, siblings: int, work: Counter[str]
) -> Counter[str]:
    """The work of starting one transient child next to ``siblings`` running
    ones, restarting it after a failure (where only it restarts), and its normal
    exit."""
    root = start([], SupervisorFlags(strategy=strategy, max_restarts=10))
    for n in range(siblings):
        root.start_child(probe(f"sibling-{n}"))
    root.wait_quiet()
    work.clear()

    run = root.start_child(probe("run", restart=Restart.TRANSIENT))
    root.wait_quiet()
    if strategy in (Strategy.ONE_FOR_ONE, Strategy.SIMPLE_ONE_FOR_ONE):
        inject(root, run, Crash(ValueError("boom")))
    inject(root, run, STOP)

    done = work.copy()
    root.stop()
    return done


# 2,000 actors take a second to start: the strategies the runtime does not use
# run with the long tests only.
STRATEGIES = [
    Strategy.SIMPLE_ONE_FOR_ONE,
    Strategy.ONE_FOR_ONE,
    pytest.param(Strategy.ONE_FOR_ALL, marks=pytest.mark.slow),
    pytest.param(Strategy.REST_FOR_ONE, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.value)
def test_one_childs_start_restart_and_exit_cost_the_same_with_2000_siblings_as_10(
    start: Start, strategy: Strategy, work: Counter[str]
) -> None:
    few = one_child_lifetime(start, strategy, FEW, work)
    many = one_child_lifetime(start, strategy, MANY, work)

    assert many == few
    assert few["scans of all children"] == 0
    assert few["trees assembled"] == 0
    assert 1 <= few["ChildInfo built"] <= 6, few


def test_closing_a_path_forgets_its_subtree_and_nothing_else() -> None:
    tree = Tree("root", clock=None)  # type: ignore[arg-type]
    paths: list[Path] = [("a",), ("a", "x"), ("a", "x", "deep"), ("b",), ("ab",)]
    for path in paths:
        tree.open(path)

    tree.close_under(("a",))

    assert tree._refs == {("b",): None, ("ab",): None}
    assert tree._below == {(): {"b", "ab"}}
