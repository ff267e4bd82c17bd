"""Interop scenario for kcat (Debian's, on its older librdkafka), driven as a command-line
tool: auto-created topics, keyed records with headers and nulls, balanced consumer groups,
resuming at committed offsets, rebalances, codecs, a 1 MiB record, ListOffsets by timestamp
(-Q) and the idempotent producer, against the broker at $BOOTSTRAP.

kcat has no admin API: topics come from auto-creation with the broker's num.partitions,
which tests/interop/run sets to 4 (and message.max.bytes to 4 MiB) for this client."""

import json
import os
import re
import signal
import subprocess
import tempfile

from common import (BOOTSTRAP, ONE_MIB, Runner, check, check_eq, java_partition, unique,
                    wait_until)

PARTITIONS = int(os.environ.get("INTEROP_NUM_PARTITIONS", "4"))
KCAT = ["kcat", "-b", BOOTSTRAP, "-m", "15"]
# kcat's librdkafka defaults to a crc32 partitioner; Java's is murmur2.
MURMUR = ["-X", "partitioner=murmur2_random"]
WORK = tempfile.mkdtemp(prefix="strand-interop-kcat-")


def kcat(args, stdin=None, timeout=60):
    p = subprocess.run(KCAT + args, input=stdin, capture_output=True, timeout=timeout)
    check(p.returncode == 0, f"kcat {' '.join(args)} exited {p.returncode}: "
                             f"{p.stderr.decode(errors='replace')[-1500:]}")
    return p.stdout


def lines_for(tag, n):
    """Input lines `key:value` for kcat -K: -Z. Keys are unique; every 7th record has no
    key (no delimiter), every 5th keyed one a null value (empty after the delimiter)."""
    recs = []
    for i in range(n):
        key = None if i % 7 == 3 else f"{tag}-key-{i}"
        value = None if (i % 5 == 4 and key is not None) else f"{tag}-value-{i}"
        recs.append((key, value))
    text = "".join(f"{k}:{v or ''}\n" if k is not None else f"{v}\n" for k, v in recs)
    return recs, text.encode()


def produce(topic, tag, n, extra=()):
    recs, text = lines_for(tag, n)
    kcat(["-P", "-t", topic, "-K", ":", "-Z", "-H", "src=kcat", "-H", f"tag={tag}",
          *MURMUR, *extra], stdin=text)
    return recs


def parse(out):
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def verify(recs, got, what, tag=None):
    """Each record exactly once, keyed ones on Java's partition, per-partition order kept,
    headers intact."""
    seen = {}
    for g in got:
        ident = (g["key"], g["payload"])
        check(ident not in seen, f"{what}: {ident} consumed twice")
        seen[ident] = (g["partition"], g["offset"])
        if tag is not None:
            check_eq(g.get("headers"), ["src", "kcat", "tag", tag], f"{what}: headers of {ident}")
    missing = [r for r in recs if r not in seen]
    check(not missing, f"{what}: {len(missing)} records never consumed, e.g. {missing[:3]}")
    check_eq(len(seen), len(recs), f"{what}: number of distinct records consumed")
    for k, v in recs:
        if k is not None:
            check_eq(seen[(k, v)][0], java_partition(k.encode(), PARTITIONS),
                     f"{what}: partition of key {k} (Java's murmur2 partitioner)")
    order = {r: i for i, r in enumerate(recs)}
    for part in range(PARTITIONS):
        mine = sorted((g for g in got if g["partition"] == part), key=lambda g: g["offset"])
        idx = [order[(g["key"], g["payload"])] for g in mine]
        check_eq(idx, sorted(idx), f"{what}: partition {part} keeps the produced order")
        offs = [g["offset"] for g in got if g["partition"] == part]
        check_eq(offs, sorted(offs), f"{what}: offsets of partition {part} as consumed")


def group_consume(topic, group, timeout=60):
    out = kcat(["-G", group, "-J", "-e", "-X", "auto.offset.reset=earliest",
                "-X", "enable.auto.commit=true", topic], timeout=timeout)
    return parse(out)


class State:
    pass


S = State()


def test_topic_auto_created():
    S.topic = unique("kcat-main")
    S.recs = produce(S.topic, "a", 300)
    md = json.loads(kcat(["-L", "-J", "-t", S.topic]))
    parts = md["topics"][0]["partitions"]
    check_eq(sorted(p["partition"] for p in parts), list(range(PARTITIONS)),
             "partitions of the auto-created topic")


def test_group_consumes_all_once_in_order_and_commits():
    S.group = unique("kcat-group")
    got = group_consume(S.topic, S.group)
    verify(S.recs, got, "first consumer", tag="a")


def test_restarted_consumer_resumes_at_committed_offset():
    more = produce(S.topic, "b", 100)
    got = group_consume(S.topic, S.group)
    verify(more, got, "restarted consumer (only records after the committed offset)", tag="b")


class Member:
    """A `kcat -G` process writing JSON lines to a file; its stderr says what it owns."""

    def __init__(self, name, group, topic):
        self.name = name
        self.out = open(os.path.join(WORK, f"{name}.out"), "wb")
        self.err = open(os.path.join(WORK, f"{name}.err"), "w+b")
        self.proc = subprocess.Popen(
            KCAT + ["-G", group, "-J", "-u", "-X", "auto.offset.reset=earliest",
                    "-X", "session.timeout.ms=10000", "-X", "heartbeat.interval.ms=500",
                    "-X", "partition.assignment.strategy=range", topic],
            stdout=self.out, stderr=self.err)

    def assignment(self):
        """Partitions held after the last rebalance message on stderr."""
        check(self.proc.poll() is None, f"member {self.name} exited: {self.stderr()}")
        owned = set()
        for line in self.stderr().splitlines():
            m = re.search(r"rebalanced .*: (assigned|revoked): (.*)", line)
            if m:
                parts = {int(p) for p in re.findall(r"\[(\d+)\]", m.group(2))}
                owned = parts if m.group(1) == "assigned" else set()
        return owned

    def stderr(self):
        self.err.flush()
        with open(self.err.name, "rb") as f:
            return f.read().decode(errors="replace")

    def records(self):
        self.out.flush()
        with open(self.out.name, "rb") as f:
            text = f.read().decode()
        # A line still being written has no newline yet.
        return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # kcat closes the consumer: a final commit
            self.proc.wait(30)


def test_group_members_split_partitions_and_rebalance_loses_nothing():
    topic = unique("kcat-group2")
    group = unique("kcat-split")
    first = produce(topic, "c", 120)
    members = [Member("m1", group, topic), Member("m2", group, topic)]
    try:
        def split():
            sets = [m.assignment() for m in members]
            return (all(sets) and set().union(*sets) == set(range(PARTITIONS))
                    and sum(map(len, sets)) == PARTITIONS)

        def total():
            return sum(len(m.records()) for m in members)

        wait_until(split, 60, "two members to split the partitions between them")
        wait_until(lambda: total() >= len(first), 60, "the two members to consume the first batch")
        members.append(Member("m3", group, topic))
        second = produce(topic, "d", 120)
        wait_until(split, 60, "a rebalance giving each of three members some partitions")
        third = produce(topic, "e", 120)
        everything = first + second + third
        wait_until(lambda: total() >= len(everything), 60,
                   lambda: f"all {len(everything)} records across three members (got {total()})")
    finally:
        for m in members:
            m.stop()
    check(members[2].records(), "the third member consumed nothing")
    got = [r for m in members for r in m.records()]
    got.sort(key=lambda g: (g["partition"], g["offset"]))
    verify(everything, got, "three-member group")


def test_compression_codecs_round_trip():
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        topic = unique(f"kcat-{codec}")
        recs = produce(topic, codec, 200, ["-z", codec, "-X", "linger.ms=20"])
        got = parse(kcat(["-C", "-t", topic, "-J", "-e", "-o", "beginning"]))
        verify(recs, got, f"{codec} round trip", tag=codec)


def test_one_mib_record_round_trips():
    topic = unique("kcat-big")
    value = bytes(0x21 + (i * 7919 + 13) % 90 for i in range(ONE_MIB))
    path = os.path.join(WORK, "big.bin")
    with open(path, "wb") as f:
        f.write(value)
    # A file argument is sent whole as one record.
    kcat(["-P", "-t", topic, "-p", "0", "-X", f"message.max.bytes={3 * ONE_MIB}", path])
    out = kcat(["-C", "-t", topic, "-p", "0", "-e", "-c", "1", "-o", "beginning", "-f", "%s",
                "-X", f"fetch.max.bytes={4 * ONE_MIB}", "-X", f"receive.message.max.bytes={8 * ONE_MIB}"])
    check_eq(len(out), ONE_MIB, "size of the consumed 1 MiB record")
    check(out == value, "the consumed 1 MiB record differs from the one produced")


def test_list_offsets_by_timestamp():
    topic = unique("kcat-time")
    # kcat cannot set timestamps: separate producer runs give records distinct create times.
    for i in range(5):
        kcat(["-P", "-t", topic, "-p", "0"], stdin=f"t{i}\n".encode())
    got = parse(kcat(["-C", "-t", topic, "-p", "0", "-J", "-e", "-o", "beginning"]))
    check_eq([g["payload"] for g in got], [f"t{i}" for i in range(5)], "timestamped records")
    ts = [g["ts"] for g in got]
    check(ts == sorted(ts), f"create timestamps not increasing: {ts}")

    def query(t):
        out = kcat(["-Q", "-t", f"{topic}:0:{t}"]).decode()
        m = re.search(r"offset (-?\d+)", out)
        check(m is not None, f"kcat -Q printed no offset: {out!r}")
        return int(m.group(1))

    for t in sorted(set(ts)) + [ts[0] - 1000, ts[2] - 1]:
        want = next(i for i, x in enumerate(ts) if x >= t)
        check_eq(query(t), want, f"offset for timestamp {t} (record timestamps {ts})")
    check_eq(query(ts[-1] + 60_000_000), -1, "offset for a timestamp after the last record")


def test_idempotent_producer_writes_each_record_once():
    topic = unique("kcat-idem")
    recs = produce(topic, "i", 500, ["-X", "enable.idempotence=true", "-X", "acks=all"])
    got = parse(kcat(["-C", "-t", topic, "-J", "-e", "-o", "beginning"]))
    verify(recs, got, "idempotent producer", tag="i")


def main():
    r = Runner("kcat")
    r.step(f"auto-created topic with {PARTITIONS} partitions, keyed records with headers and nulls", test_topic_auto_created)
    r.step("group consumes all exactly once in per-partition order, commits", test_group_consumes_all_once_in_order_and_commits)
    r.step("restarted consumer resumes at the committed offset", test_restarted_consumer_resumes_at_committed_offset)
    r.step("two members split partitions, a third joins, nothing lost", test_group_members_split_partitions_and_rebalance_loses_nothing)
    r.step("gzip, snappy, lz4, zstd round-trip", test_compression_codecs_round_trip)
    r.step("1 MiB record round-trips", test_one_mib_record_round_trips)
    r.step("ListOffsets by timestamp (kcat -Q)", test_list_offsets_by_timestamp)
    r.step("idempotent producer writes each record once", test_idempotent_producer_writes_each_record_once)
    r.finish()


if __name__ == "__main__":
    main()
