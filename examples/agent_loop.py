"""An LLM-agent loop as a durable workflow, with a fake deterministic "model".

Run: python examples/agent_loop.py [journal-dir]

Each turn, the ``think`` step (the model) reads the conversation so far and
answers either a tool call ``{"tool": name, "args": [...]}`` or
``{"final": answer}``. Tool calls are durable steps too, so a crash mid-loop
resumes from history without asking the model or calling a tool again. The
loop stops at ``MAX_TURNS`` model calls: an agent that never concludes ends
with status ``"gave_up"`` instead of looping forever.

The "model" is a few rules over the conversation: no network, same answer for
the same conversation.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from typing import Any

from actors import ActorSystem, ManualClock, WorkflowContext, activity, workflow

MAX_TURNS = 6

calls: Counter[str] = Counter()  # executions of each step


@activity
def think(conversation: list[dict[str, Any]]) -> dict[str, Any]:
    """The fake model: decide the next action from the conversation so far."""
    calls["think"] += 1
    question = conversation[0]["content"]
    results = [m["content"] for m in conversation if m["role"] == "tool"]
    if "weather" in question:  # a question the tools cannot settle
        decision = {"tool": "lookup", "args": ["weather tomorrow"]}
    elif not results:
        decision = {"tool": "lookup", "args": ["population of Lyon"]}
    elif len(results) == 1:
        decision = {"tool": "multiply", "args": [results[0], 2]}
    else:
        decision = {"final": f"Twice the population of Lyon is {results[1]:,}."}
    print(f"  model: {decision}")
    return decision


@activity
def lookup(query: str) -> Any:
    calls["lookup"] += 1
    facts = {"population of Lyon": 522_250}
    found = facts.get(query, f"no answer for {query!r}")
    print(f"  lookup({query!r}) -> {found!r}")
    return found


@activity
def multiply(a: int, b: int) -> int:
    calls["multiply"] += 1
    print(f"  multiply({a}, {b}) -> {a * b}")
    return a * b


TOOLS = {"lookup": lookup, "multiply": multiply}


@workflow
async def agent(ctx: WorkflowContext, question: str) -> dict[str, Any]:
    conversation: list[dict[str, Any]] = [{"role": "user", "content": question}]
    for turn in range(1, MAX_TURNS + 1):
        decision = await ctx.call(think, conversation)
        if "final" in decision:
            return {"status": "answered", "answer": decision["final"], "turns": turn}
        tool = TOOLS[decision["tool"]]
        result = await ctx.call(tool, *decision["args"])
        conversation.append({"role": "assistant", "content": decision})
        conversation.append({"role": "tool", "content": result})
    return {"status": "gave_up", "turns": MAX_TURNS, "last": conversation[-1]}


QUESTIONS = {
    "lyon": "What is twice the population of Lyon?",
    "weather": "What will the weather be tomorrow?",
}


def main(path: str) -> dict[str, Any]:
    calls.clear()
    results: dict[str, Any] = {}
    with ActorSystem.open(path, clock=ManualClock()) as system:
        for name, question in QUESTIONS.items():
            print(f"agent-{name}: {question}")
            ref = system.spawn(agent, question, id=f"agent-{name}")
            results[name] = ref.result(timeout=10)
            print(f"  -> {results[name]}")
    with ActorSystem.open(path, clock=ManualClock()) as system:
        again = system.ref("agent-lyon").result(timeout=10)
        print(f"reopened: agent-lyon read from history: {again['answer']}")
    print(f"step executions: {dict(calls)}")
    print(f"result: {results}")
    return results


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="chronik-"))
