"""``ctx.gather``: leaf commands issued together, answered once all have ended."""

from __future__ import annotations

import attrs

from actors._commands._base import Answer, Command, Driver, Request

__all__ = ["Gather"]


@attrs.frozen(eq=False)
class Gather(Request):
    """Leaf commands issued together, at consecutive seqs in argument order."""

    requests: tuple[Command, ...]
    return_exceptions: bool

    def describe(self) -> str:
        leaves = ", ".join(leaf.describe() for leaf in self.requests)
        return f"ctx.gather({leaves})"

    def issue(self, driver: Driver) -> tuple[int, ...]:
        return tuple(seq for leaf in self.requests for seq in leaf.issue(driver))

    def answer(self, driver: Driver, seqs: tuple[int, ...]) -> Answer | None:
        # Every receive takes its signal now, in seq order, even if others wait.
        answers = [
            leaf.answer(driver, (seq,))
            for leaf, seq in zip(self.requests, seqs, strict=True)
        ]
        ended = [answer for answer in answers if answer is not None]
        if len(ended) < len(answers):
            return None
        if self.return_exceptions:
            return Answer([a.error if a.error is not None else a.value for a in ended])
        for answer in ended:
            if answer.error is not None:
                return answer
        return Answer([answer.value for answer in ended])
