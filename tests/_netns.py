"""Machines of their own for tests of hosts on several machines (issue 14).

Each "machine" is a Linux network namespace joined to the root namespace by a
veth pair with a /30 of its own (``Link``); a process started with
``Link.command`` sees only that link. A ``Forwarder`` in the test process
listens on the root end of a link and relays each connection to a server the
root namespace reaches (PostgreSQL on its loopback, which other namespaces
cannot see).

``Link.cut`` drops every packet either way in the "network": a ``blackhole``
queue on both ends of the veth pair, which reports each packet as sent. Both
sides' connections stall with no reset and retransmit with TCP's growing
backoff, as across a real partition. (Taking a veth end down instead would
tell the machine's kernel its link has no carrier: its TCP then retries every
few hundred ms and never backs off, which hides how long a real host takes to
come back.) ``Link.restore`` removes the queues; the stalled connections go on
at their next retransmission.

Names and addresses are unique per test process (its pid), and ``links``
removes whatever it made, whatever happens in between. Needs root, ``ip`` and
``tc``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
import threading
from collections.abc import Iterator

import attrs

__all__ = ["Forwarder", "Link", "links", "unavailable"]

_POOL = ipaddress.ip_network("10.231.0.0/16")  # split into /30s, one per link
_BLOCKS = _POOL.num_addresses // 4
_CHUNK = 65536
_INNER = "veth0"  # the veth end inside each namespace


def _run(*argv: str) -> str:
    """Run ``argv``; its output. ``CalledProcessError`` (with stderr) on failure."""
    done = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)
    return done.stdout


def _ip(*args: str) -> str:
    return _run("ip", *args)


def unavailable() -> str | None:
    """Why this process cannot make namespaces and cut links (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"chronik-probe-{os.getpid()}"
    step = "`ip netns add`"
    try:
        _ip("netns", "add", probe)
        step = "a blackhole queue (`tc qdisc add ... blackhole`)"
        _run("tc", "-n", probe, "qdisc", "add", "dev", "lo", "root", "blackhole")
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", None) or error
        return f"{step} failed: {str(detail).strip()}"
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            _ip("netns", "del", probe)
    return None


@attrs.frozen
class Link:
    """A namespace and the veth pair joining it to the root namespace."""

    namespace: str
    outer: str  # the veth end in the root namespace
    outer_address: str  # where the machine reaches the root namespace
    inner_address: str  # the machine's own address

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` execs it: the
        process's pid is the command's own)."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def cut(self) -> None:
        """Drop every packet either way, silently (see the module's docstring)."""
        self._queue("replace", "root", "blackhole")

    def restore(self) -> None:
        self._queue("del", "root")

    def _queue(self, action: str, *spec: str) -> None:
        """``tc qdisc ACTION`` on both ends of the veth pair."""
        _run("tc", "qdisc", action, "dev", self.outer, *spec)
        _run("tc", "-n", self.namespace, "qdisc", action, "dev", _INNER, *spec)


def _free_blocks(count: int) -> list[int]:
    """``count`` /30 blocks of the pool no address of the root namespace is in,
    from a place the pid picks (concurrent test processes pick apart)."""
    used = set()
    for line in _ip("-4", "-o", "addr", "show").splitlines():
        address = ipaddress.ip_interface(line.split()[3]).ip
        if address in _POOL:
            used.add((int(address) - int(_POOL.network_address)) // 4)
    start = os.getpid() * 8 % _BLOCKS
    blocks = [b % _BLOCKS for b in range(start, start + _BLOCKS)]
    return [b for b in blocks if b not in used][:count]


def _make(index: int, block: int) -> Link:
    base = int(_POOL.network_address) + 4 * block
    outer_address = str(ipaddress.ip_address(base + 1))
    inner_address = str(ipaddress.ip_address(base + 2))
    pid = os.getpid()
    link = Link(
        f"chronik-{pid}-{index}", f"chr{pid}o{index}", outer_address, inner_address
    )
    ns = link.namespace
    _ip("netns", "add", ns)
    _ip("link", "add", link.outer, "type", "veth", "peer", "name", _INNER, "netns", ns)
    _ip("addr", "add", f"{outer_address}/30", "dev", link.outer)
    _ip("link", "set", link.outer, "up")
    _ip("-n", ns, "addr", "add", f"{inner_address}/30", "dev", _INNER)
    _ip("-n", ns, "link", "set", _INNER, "up")
    _ip("-n", ns, "link", "set", "lo", "up")
    return link


def _remove(index: int) -> None:
    """Remove what ``_make`` made of link ``index``, as far as it got."""
    pid = os.getpid()
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("link", "del", f"chr{pid}o{index}")  # its peer goes with it
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("netns", "del", f"chronik-{pid}-{index}")


@contextlib.contextmanager
def links(count: int) -> Iterator[list[Link]]:
    """``count`` namespaces, each linked to the root namespace; all removed
    at the end (processes still inside them keep them alive until they end:
    end those first)."""
    made: list[Link] = []
    tried = 0  # links _make began: the last may be half made
    try:
        for index, block in enumerate(_free_blocks(count)):
            tried = index + 1
            made.append(_make(index, block))
        yield made
    finally:
        for index in range(tried):
            _remove(index)


class Forwarder:
    """Relays each connection to ``address``:``port`` to ``server`` (a
    (host, port), or a Unix socket's path), two threads a connection."""

    def __init__(self, address: str, server: tuple[str, int] | str) -> None:
        self._server = server
        self._listener = socket.create_server((address, 0))
        self.address = address
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        # Invariant: both sockets of every open relay, until they are closed.
        self._sockets: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = self._connect()
            except OSError:
                client.close()  # the client sees the server refuse
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    server.close()
                    return
                self._sockets |= {client, server}
            _no_delay(client)
            down = threading.Thread(target=_pump, args=(server, client), daemon=True)
            down.start()
            threading.Thread(
                target=self._relay, args=(client, server, down), daemon=True
            ).start()

    def _connect(self) -> socket.socket:
        if isinstance(self._server, str):
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix.connect(self._server)
            return unix
        server = socket.create_connection(self._server, timeout=10)
        server.settimeout(None)
        _no_delay(server)
        return server

    def _relay(
        self, client: socket.socket, server: socket.socket, down: threading.Thread
    ) -> None:
        """Relay ``client`` to ``server``; once either side is done, close both
        (here, after the other direction's thread ended: no fd is reused under
        it)."""
        _pump(client, server)
        down.join()
        with self._lock:
            self._sockets -= {client, server}
        client.close()
        server.close()

    def reset(self) -> None:
        """End every connection relayed now, both ways (as a restarted proxy
        or NAT would): each side sees its connection closed."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # the relays close them

    def close(self) -> None:
        with self._lock:
            self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._listener.close()
        self.reset()


def _no_delay(sock: socket.socket) -> None:
    """Relay each message at once, as both ends (libpq, the server) ask of
    their own sockets."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until either ends; then end both, so the
    other direction's thread stops too."""
    with contextlib.suppress(OSError):
        while data := source.recv(_CHUNK):
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
