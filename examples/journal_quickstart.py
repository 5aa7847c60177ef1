"""An eventsourcing Application whose events live in chronik's LMDB journal.

Run: python examples/journal_quickstart.py [journal-dir]

It places an order, adds lines, closes the application, opens the journal again
(as a restarted process would), reads the order back, and audits the journal.
"""

from __future__ import annotations

import sys
import tempfile
from decimal import Decimal
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from journal import JournalReader


class Order(Aggregate):
    @event("Placed")
    def __init__(self, customer: str) -> None:
        self.customer = customer
        self.lines: list[tuple[str, int, Decimal]] = []

    @event("LineAdded")
    def add_line(self, sku: str, quantity: int, price: Decimal) -> None:
        self.lines.append((sku, quantity, price))

    @property
    def total(self) -> Decimal:
        return sum((q * p for _, q, p in self.lines), Decimal(0))


class Orders(Application[UUID]):
    def place(self, customer: str, lines: list[tuple[str, int, Decimal]]) -> UUID:
        order = Order(customer)
        for sku, quantity, price in lines:
            order.add_line(sku, quantity, price)
        self.save(order)
        return order.id

    def get(self, order_id: UUID) -> Order:
        order: Order = self.repository.get(order_id)
        return order


def main(path: str) -> None:
    env = {"PERSISTENCE_MODULE": "journal", "LMDB_PATH": path}
    app = Orders(env=env)
    order_id = app.place(
        "ada", [("book", 2, Decimal("12.50")), ("pen", 3, Decimal("1.20"))]
    )
    app.close()

    app = Orders(env=env)  # a restarted process: everything comes back from disk
    order = app.get(order_id)
    print(f"order {order_id} for {order.customer}: {order.lines}, total {order.total}")
    app.close()

    with JournalReader(path) as reader:
        for stored in reader.stream(order_id):
            print(f"  v{stored.originator_version} {stored.topic}")
        report = reader.verify()
        print(f"journal at {reader.path}: {report.events} events, ok={report.ok}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="chronik-"))
