"""Interop scenario for kafka-python (pure Python): topics, keyed records with headers,
consumer groups, committed offsets, rebalances, codecs, a 1 MiB record, ListOffsets by
timestamp and the idempotent producer, against the broker at $BOOTSTRAP."""

import threading
import time

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from common import (BIG_TOPIC_MAX_MESSAGE_BYTES, BOOTSTRAP, ONE_MIB, PARTITIONS, Runner,
                    check, check_eq, check_keyed_partitions, sample_records, unique,
                    verify_consumed, wait_until)


def producer(**extra):
    # kafka-python's default partitioner is Java's murmur2 one.
    conf = {"bootstrap_servers": BOOTSTRAP, "acks": "all", "linger_ms": 5}
    conf.update(extra)
    return KafkaProducer(**conf)


def consumer(group, *topics, **extra):
    conf = {"bootstrap_servers": BOOTSTRAP, "group_id": group, "auto_offset_reset": "earliest",
            "enable_auto_commit": False, "session_timeout_ms": 10000,
            "heartbeat_interval_ms": 500}
    conf.update(extra)
    return KafkaConsumer(*topics, **conf)


def produce_all(p, topic, records):
    futures = [(r["id"], p.send(topic, key=r["key"], value=r["value"], headers=r["headers"]))
               for r in records]
    p.flush(timeout=30)
    acks = {}
    for rid, f in futures:
        md = f.get(timeout=30)
        acks[rid] = (md.partition, md.offset)
    return acks


def as_record(msg):
    ids = [v.decode() for k, v in msg.headers if k == "id"]
    check(ids, f"record at {msg.partition}/{msg.offset} lacks its id header")
    return {"id": ids[0], "key": msg.key, "value": msg.value, "headers": list(msg.headers),
            "partition": msg.partition, "offset": msg.offset}


def consume_n(c, n, timeout_s=60):
    out = []

    def step():
        for recs in c.poll(timeout_ms=200).values():
            out.extend(as_record(m) for m in recs)

    wait_until(lambda: len(out) >= n, timeout_s, f"{n} records (got {len(out)})", step)
    return out


def nothing_more(c, what):
    extra = [as_record(m) for recs in c.poll(timeout_ms=1000).values() for m in recs]
    check(not extra, f"{what}: unexpected extra records {[e['id'] for e in extra[:5]]}")


def create_topic(admin, name, partitions, config=None):
    admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1,
                                "configs": config or {}}}, wait_for_metadata=True)

    def ready():
        md = admin.describe_topics([name])
        return (md and md[0]["error_code"] == 0 and len(md[0]["partitions"]) == partitions
                and all(p["leader_id"] >= 0 for p in md[0]["partitions"]))
    wait_until(ready, 30, f"metadata for new topic {name}")


class State:
    pass


S = State()


def test_create_topic():
    S.admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    S.topic = unique("kpy-main")
    create_topic(S.admin, S.topic, PARTITIONS)


def test_produce_keyed_headers_nulls():
    S.records = sample_records("a", 300)
    S.acks = produce_all(producer(), S.topic, S.records)
    check_keyed_partitions(S.records, S.acks, PARTITIONS, "keyed records")


def test_group_consumes_all_once_in_order_and_commits():
    S.group = unique("kpy-group")
    c = consumer(S.group, S.topic)
    got = consume_n(c, len(S.records))
    nothing_more(c, "first consumer")
    verify_consumed(S.records, S.acks, got, "first consumer")
    c.commit()
    ends = {}
    for r in got:
        ends[r["partition"]] = max(ends.get(r["partition"], -1), r["offset"] + 1)
    for part in range(PARTITIONS):
        check_eq(c.committed(TopicPartition(S.topic, part)), ends.get(part),
                 f"committed offset of partition {part}")
    c.close(autocommit=False)


def test_restarted_consumer_resumes_at_committed_offset():
    more = sample_records("b", 100)
    acks = produce_all(producer(), S.topic, more)
    c = consumer(S.group, S.topic)
    got = consume_n(c, len(more))
    nothing_more(c, "restarted consumer (records before the committed offset?)")
    verify_consumed(more, acks, got, "restarted consumer")
    c.commit()
    c.close(autocommit=False)


def cause(e):
    return f"{e!r} caused by {e.__cause__!r}" if e is not None else "no error"


class Member(threading.Thread):
    """A group member polling in its own thread (kafka-python joins inside poll). It commits
    after each poll, so that when a rebalance (which happens inside poll) moves a partition,
    the next owner resumes where this one stopped. kafka-python 3 forbids blocking calls
    such as commit() inside a synchronous rebalance listener."""

    def __init__(self, name, group, topic, sink, lock):
        super().__init__(daemon=True)
        self.name_, self.sink, self.lock = name, sink, lock
        self.assignment = set()
        self.stop = threading.Event()
        self.error = None
        self.group, self.topic = group, topic

    def run(self):
        c = None
        try:
            c = consumer(self.group, max_poll_interval_ms=30000)
            member = self

            class Listener(ConsumerRebalanceListener):
                def on_partitions_revoked(self, revoked):
                    member.assignment = set()

                def on_partitions_assigned(self, assigned):
                    member.assignment = {tp.partition for tp in assigned}

            c.subscribe([self.topic], listener=Listener())
            while not self.stop.is_set():
                batch = c.poll(timeout_ms=100)
                for recs in batch.values():
                    with self.lock:
                        self.sink.extend((self.name_, as_record(m)) for m in recs)
                if batch:
                    c.commit()
        except Exception as e:  # noqa: BLE001 - reported by the test thread
            self.error = e
        finally:
            if c is not None:
                c.close(autocommit=False)


def test_group_members_split_partitions_and_rebalance_loses_nothing():
    topic = unique("kpy-group2")
    create_topic(S.admin, topic, 6)
    group = unique("kpy-split")
    sink, lock = [], threading.Lock()
    first = sample_records("c", 120)
    acks = produce_all(producer(), topic, first)
    members = [Member("m1", group, topic, sink, lock), Member("m2", group, topic, sink, lock)]
    for m in members:
        m.start()

    def split():
        for m in members:
            check(m.error is None, f"member {m.name_} failed: {cause(m.error)}")
        sets = [m.assignment for m in members]
        return all(sets) and set().union(*sets) == set(range(6)) and sum(map(len, sets)) == 6

    wait_until(split, 60, "two members to split 6 partitions between them")
    wait_until(lambda: len(sink) >= len(first), 60, "the two members to consume the first batch")
    members.append(Member("m3", group, topic, sink, lock))
    members[-1].start()
    second = sample_records("d", 120)
    acks.update(produce_all(producer(), topic, second))
    wait_until(split, 60, "a rebalance giving each of three members some of the 6 partitions")
    third = sample_records("e", 120)
    acks.update(produce_all(producer(), topic, third))
    everything = first + second + third
    wait_until(lambda: split() is not None and len(sink) >= len(everything), 60,
               f"all {len(everything)} records across the three members")
    for m in members:
        m.stop.set()
    for m in members:
        m.join(30)
    for m in members:
        check(m.error is None, f"member {m.name_} failed: {cause(m.error)}")
    check(any(name == "m3" for name, _ in sink), "the third member consumed nothing")
    verify_consumed(everything, acks, [r for _, r in sink], "three-member group")


def test_compression_codecs_round_trip():
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        topic = unique(f"kpy-{codec}")
        create_topic(S.admin, topic, 2)
        recs = [{"id": f"{codec}-{i}", "key": f"k{i}".encode(),
                 "value": (f"{codec} payload {i} " * 40).encode(),
                 "headers": [("id", f"{codec}-{i}".encode())]} for i in range(200)]
        acks = produce_all(producer(compression_type=codec, linger_ms=20), topic, recs)
        c = consumer(unique("kpy-codec"), topic)
        got = consume_n(c, len(recs))
        c.close(autocommit=False)
        verify_consumed(recs, acks, got, f"{codec} round trip")


def test_one_mib_record_round_trips():
    topic = unique("kpy-big")
    create_topic(S.admin, topic, 1, {"max.message.bytes": str(BIG_TOPIC_MAX_MESSAGE_BYTES)})
    value = bytes((i * 7919 + 13) % 251 for i in range(ONE_MIB))
    rec = [{"id": "big", "key": b"big", "value": value, "headers": [("id", b"big")]}]
    acks = produce_all(producer(max_request_size=BIG_TOPIC_MAX_MESSAGE_BYTES), topic, rec)
    c = consumer(unique("kpy-big"), topic, max_partition_fetch_bytes=4 * ONE_MIB,
                 fetch_max_bytes=8 * ONE_MIB)
    got = consume_n(c, 1)
    c.close(autocommit=False)
    check_eq(len(got[0]["value"]), ONE_MIB, "size of the consumed 1 MiB record")
    verify_consumed(rec, acks, got, "1 MiB record")


def test_list_offsets_by_timestamp():
    topic = unique("kpy-time")
    create_topic(S.admin, topic, 1)
    base = int(time.time() * 1000) - 60_000
    p = producer()
    for i in range(10):
        p.send(topic, value=f"t{i}".encode(), timestamp_ms=base + i * 1000).get(timeout=30)
    c = consumer(None)
    tp = TopicPartition(topic, 0)
    check_eq(c.beginning_offsets([tp])[tp], 0, "earliest offset")
    check_eq(c.end_offsets([tp])[tp], 10, "latest offset")
    for ts, want in [(base, 0), (base + 4500, 5), (base + 9000, 9), (base - 10_000, 0)]:
        got = c.offsets_for_times({tp: ts})[tp]
        check(got is not None, f"no offset for timestamp base+{ts - base}ms")
        check_eq(got.offset, want, f"offset for timestamp base+{ts - base}ms")
        check_eq(got.timestamp, base + want * 1000, f"timestamp returned for base+{ts - base}ms")
    check_eq(c.offsets_for_times({tp: base + 60_000_000})[tp], None,
             "offset for a timestamp after the last record")
    c.close(autocommit=False)


def test_idempotent_producer_writes_each_record_once():
    topic = unique("kpy-idem")
    create_topic(S.admin, topic, 3)
    recs = sample_records("i", 500)
    acks = produce_all(producer(enable_idempotence=True, linger_ms=1, batch_size=2048), topic, recs)
    c = consumer(unique("kpy-idem"), topic)
    got = consume_n(c, len(recs))
    nothing_more(c, "idempotent producer")
    c.close(autocommit=False)
    verify_consumed(recs, acks, got, "idempotent producer")
    check_keyed_partitions(recs, acks, 3, "idempotent producer")


def main():
    r = Runner("kafka-python")
    r.step("create topic with 4 partitions (KafkaAdminClient)", test_create_topic)
    r.step("produce keyed records with headers, null keys and null values", test_produce_keyed_headers_nulls)
    r.step("group consumes all exactly once in per-partition order, commits", test_group_consumes_all_once_in_order_and_commits)
    r.step("restarted consumer resumes at the committed offset", test_restarted_consumer_resumes_at_committed_offset)
    r.step("two members split partitions, a third joins, nothing lost", test_group_members_split_partitions_and_rebalance_loses_nothing)
    r.step("gzip, snappy, lz4, zstd round-trip", test_compression_codecs_round_trip)
    r.step("1 MiB record round-trips", test_one_mib_record_round_trips)
    r.step("ListOffsets by timestamp (offsets_for_times)", test_list_offsets_by_timestamp)
    r.step("idempotent producer writes each record once", test_idempotent_producer_writes_each_record_once)
    r.finish()


if __name__ == "__main__":
    main()
