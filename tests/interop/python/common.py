"""Helpers shared by the Python interop scenarios: Kafka's murmur2 partitioner, bounded
waiting, the records every scenario produces, and the checks made on what comes back."""

import os
import sys
import time
import uuid

BOOTSTRAP = os.environ.get("BOOTSTRAP", "127.0.0.1:9092")
TARGET = os.environ.get("INTEROP_TARGET", "strand")
PARTITIONS = 4
ONE_MIB = 1024 * 1024
# Topic-level limit for the 1 MiB record: above the broker default (1048588 bytes), which a
# 1 MiB value plus batch overhead exceeds.
BIG_TOPIC_MAX_MESSAGE_BYTES = 3 * ONE_MIB


class ScenarioFailure(AssertionError):
    """A check of a scenario failed; the message says what was expected and what came."""


def check(cond, msg):
    if not cond:
        raise ScenarioFailure(msg)


def check_eq(got, want, what):
    if got != want:
        raise ScenarioFailure(f"{what}: expected {want!r}, got {got!r}")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(cond, timeout_s, what, step=None):
    """Call `cond` until it returns a truthy value or `timeout_s` passes; `step` (e.g. a
    poll) runs between attempts so that the condition can make progress. `what` may be a
    callable, evaluated on timeout to describe how far things got."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            desc = what() if callable(what) else what
            raise ScenarioFailure(f"timed out after {timeout_s}s waiting for {desc}")
        if step is not None:
            step()
        else:
            time.sleep(0.05)


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) as an unsigned 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    base, rem = length & ~3, length % 4
    if rem == 3:
        h ^= data[base + 2] << 16
    if rem >= 2:
        h ^= data[base + 1] << 8
    if rem >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def java_partition(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner picks for a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _signed(v):
    return v - (1 << 32) if v >= 1 << 31 else v


# Vectors from Kafka's own UtilsTest, so that a wrong murmur2 here cannot pass silently.
for _text, _want in [("21", -973932308), ("foobar", -790332482),
                     ("a-little-bit-long-string", -985981536),
                     ("a-little-bit-longer-string", -1486304829),
                     ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
                     ("abc", 479470107)]:
    assert _signed(murmur2(_text.encode())) == _want, f"murmur2 self-check failed for {_text}"


def sample_records(tag, n):
    """n records: keyed with headers; every 7th has a null key, every 5th keyed one a null
    value (never both: kafka-python refuses such a record).
    Each carries its id in the `id` header so that even a null-key null-value record is
    recognised."""
    out = []
    for i in range(n):
        rid = f"{tag}-{i}"
        key = None if i % 7 == 3 else f"key-{i % 23}".encode()
        value = None if i % 5 == 4 and key is not None else f"value-{rid}".encode()
        headers = [("id", rid.encode()), ("n", str(i).encode())]
        out.append({"id": rid, "key": key, "value": value, "headers": headers})
    return out


def verify_consumed(produced, acks, consumed, what):
    """produced: the records sent; acks: id -> (partition, offset) from delivery reports;
    consumed: list of dicts with id, key, value, headers, partition, offset in the order
    the client returned them. Checks exactly-once, content and per-partition order."""
    seen = {}
    for c in consumed:
        check(c["id"] not in seen,
              f"{what}: record {c['id']} consumed twice (at {seen.get(c['id'])} and "
              f"{(c['partition'], c['offset'])})")
        seen[c["id"]] = (c["partition"], c["offset"])
    missing = [p["id"] for p in produced if p["id"] not in seen]
    check(not missing, f"{what}: {len(missing)} records never consumed, e.g. {missing[:5]}")
    extra = [i for i in seen if i not in acks]
    check(not extra, f"{what}: consumed records that were not produced: {extra[:5]}")
    by_id = {p["id"]: p for p in produced}
    last = {}
    for c in consumed:
        p = by_id[c["id"]]
        check_eq((c["partition"], c["offset"]), acks[c["id"]],
                 f"{what}: partition/offset of {c['id']} vs its delivery report")
        check_eq(c["key"], p["key"], f"{what}: key of {c['id']}")
        check_eq(c["value"], p["value"], f"{what}: value of {c['id']}")
        check_eq(list(c["headers"]), list(p["headers"]), f"{what}: headers of {c['id']}")
        prev = last.get(c["partition"], -1)
        check(c["offset"] > prev,
              f"{what}: partition {c['partition']} went from offset {prev} to {c['offset']}")
        last[c["partition"]] = c["offset"]
    # Within a partition, records come in the order they were produced.
    for part in {a[0] for a in acks.values()}:
        ids = [c["id"] for c in consumed if c["partition"] == part]
        sent = [p["id"] for p in produced if acks[p["id"]][0] == part]
        check_eq(ids, sent, f"{what}: order of partition {part}")


def check_keyed_partitions(produced, acks, partitions, what):
    for p in produced:
        if p["key"] is not None:
            check_eq(acks[p["id"]][0], java_partition(p["key"], partitions),
                     f"{what}: partition of key {p['key']!r} (Java's murmur2 partitioner)")


class Runner:
    """Runs named steps, prints one line per step, and exits non-zero if any failed."""

    def __init__(self, client):
        self.client = client
        self.failed = []
        self.passed = 0

    def step(self, name, fn):
        start = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next step runs
            self.failed.append(name)
            print(f"FAIL {self.client}: {name} ({time.monotonic() - start:.1f}s): "
                  f"{type(e).__name__}: {e}", flush=True)
            return
        self.passed += 1
        print(f"ok   {self.client}: {name} ({time.monotonic() - start:.1f}s)", flush=True)

    def finish(self):
        print(f"{self.client}: {self.passed} passed, {len(self.failed)} failed", flush=True)
        sys.exit(1 if self.failed else 0)
