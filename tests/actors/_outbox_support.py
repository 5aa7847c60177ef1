"""What the outbox's sink tests share: a broker cut off for a while."""

from __future__ import annotations

from collections.abc import Callable

from actors import ActorSystem, Sink, WorkflowContext, workflow
from tests._tcp_proxy import TcpProxy
from tests.actors._contract_faults import wait_until

BEFORE: tuple[str, ...] = ("cut-1:1", "cut-1:2")  # sent before the cut
DURING: tuple[str, ...] = ("cut-2:1", "cut-2:2", "cut-2:3")  # published during it


@workflow(name="tests.actors._outbox_support:announce")
async def announce(ctx: WorkflowContext, count: int) -> int:
    for n in range(count):
        ctx.publish("outage.test", {"n": n}, key="k")
    return count


def through_an_outage(
    journal_location: str,
    target: tuple[str, int],
    sink_at: Callable[[int], Sink],
    received: Callable[[], list[str]],
) -> list[str]:
    """Cut the server at ``target`` off (a ``TcpProxy`` the sink reaches it
    through, ``sink_at(port)``) after two messages went; publish three more
    while it is out: runs go on, the relay waits without dead letters; restore
    it: every message goes. The ids the server received, in order."""
    proxy = TcpProxy(*target)
    proxy.start()
    sink = sink_at(proxy.port)
    try:
        with ActorSystem.open(journal_location) as system:
            relay = system.relay(sink, poll=0.05, max_pause=0.2)
            system.spawn(announce, 2, id="cut-1").result(timeout=10)
            wait_until(lambda: set(received()) >= set(BEFORE), timeout=10)
            proxy.stop()
            system.spawn(announce, 3, id="cut-2").result(timeout=10)  # no waiting
            wait_until(lambda: relay.unavailable is not None, timeout=10)
            assert [m.id for m in relay.pending()][-3:] == list(DURING)
            assert relay.dead_letters() == []
            proxy.start()
            wait_until(lambda: set(received()) >= {*BEFORE, *DURING}, timeout=15)
            wait_until(lambda: relay.pending() == [], timeout=10)
            assert relay.dead_letters() == []
    finally:
        proxy.stop()
        close = getattr(sink, "close", None)
        if close is not None:
            close()
    return received()


def check_a_down_server_stops_the_relay(journal_location: str, down: Sink) -> None:
    """A sink whose server does not answer: the relay delivers nothing, says
    why, keeps every message pending and dead-letters none."""
    try:
        with ActorSystem.open(journal_location) as system:
            relay = system.relay(down, service=False)
            system.spawn(announce, 2, id="down-1").result(timeout=10)
            assert relay.deliver() == 0
            assert relay.unavailable is not None
            assert "cannot reach its server" in relay.unavailable
            assert [m.id for m in relay.pending()] == ["down-1:1", "down-1:2"]
            assert relay.dead_letters() == []
    finally:
        close = getattr(down, "close", None)
        if close is not None:
            close()
