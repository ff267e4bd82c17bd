"""The orders every program in this directory writes and expects, and the check of
`consume_orders`' JSON lines against them.

Order i (0-based) of a producer whose ids start with PREFIX is: order_id PREFIX-i,
customer_id customer-(i % 7), amount_cents 1000 + (i * 37) % 9000, currency EUR for even i
and USD for odd i, created_at BASE + i, the same formula as client/examples/produce_orders.rs
(whose BASE is its start time, so only created_at - created_at[0] == i is checked for it).

    python3 expected.py check-json PREFIX COUNT < consume_orders-output   # BASE = BASE_MILLIS
"""
import json
import sys

# created_at of order 0 for the orders the other-language producers write.
BASE_MILLIS = 1764000000000


def expected(prefix, i, base):
    return {
        "order_id": f"{prefix}-{i}",
        "customer_id": f"customer-{i % 7}",
        "amount_cents": 1000 + (i * 37) % 9000,
        "currency": "EUR" if i % 2 == 0 else "USD",
        "created_at": base + i,
    }


def check(prefix, count, orders, base=None):
    """Asserts that ORDERS (dicts, any order) are exactly orders PREFIX-0..COUNT-1.
    BASE None means: take it from order 0 (produce_orders uses its start time)."""
    by_id = {}
    for o in orders:
        if o["order_id"] in by_id:
            raise AssertionError(f"order {o['order_id']} decoded twice")
        by_id[o["order_id"]] = o
    want_ids = {f"{prefix}-{i}" for i in range(count)}
    if set(by_id) != want_ids:
        raise AssertionError(
            f"decoded ids differ: missing {sorted(want_ids - set(by_id))[:5]}, "
            f"unexpected {sorted(set(by_id) - want_ids)[:5]}"
        )
    if base is None:
        base = by_id[f"{prefix}-0"]["created_at"]
    for i in range(count):
        got, want = by_id[f"{prefix}-{i}"], expected(prefix, i, base)
        if got != want:
            raise AssertionError(f"order {i}: decoded {got}, expected {want}")


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "check-json":
        sys.exit(__doc__)
    prefix, count = sys.argv[2], int(sys.argv[3])
    orders = [json.loads(line) for line in sys.stdin if line.strip()]
    if len(orders) != count:
        raise AssertionError(f"consume_orders printed {len(orders)} orders, expected {count}")
    check(prefix, count, orders, BASE_MILLIS)
    print(f"consume_orders decoded all {count} {prefix} orders")


if __name__ == "__main__":
    main()
