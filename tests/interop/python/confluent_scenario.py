"""Interop scenario for confluent-kafka (librdkafka): topics, keyed records with headers,
consumer groups, committed offsets, rebalances, codecs, a 1 MiB record, ListOffsets by
timestamp and the idempotent producer, against the broker at $BOOTSTRAP."""

import threading
import time

from confluent_kafka import (TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

from common import (BIG_TOPIC_MAX_MESSAGE_BYTES, BOOTSTRAP, ONE_MIB, PARTITIONS, Runner,
                    check, check_eq, check_keyed_partitions, sample_records, unique,
                    verify_consumed, wait_until)

BASE = {"bootstrap.servers": BOOTSTRAP, "broker.address.family": "v4"}


def producer(**extra):
    # murmur2_random: Java's partitioner for keyed records (librdkafka defaults to crc32).
    conf = {**BASE, "partitioner": "murmur2_random", "linger.ms": 5, "acks": "all"}
    conf.update({k.replace("_", "."): v for k, v in extra.items()})
    return Producer(conf)


def consumer(group, **extra):
    conf = {**BASE, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500}
    conf.update({k.replace("_", "."): v for k, v in extra.items()})
    return Consumer(conf)


def produce_all(p, topic, records, **kw):
    """Produce records and return id -> (partition, offset) from the delivery reports."""
    acks, errors = {}, []

    def report(rid):
        def cb(err, msg):
            if err is not None:
                errors.append(f"{rid}: {err}")
            else:
                acks[rid] = (msg.partition(), msg.offset())
        return cb

    for r in records:
        p.produce(topic, key=r["key"], value=r["value"], headers=r["headers"],
                  on_delivery=report(r["id"]), **kw)
        p.poll(0)
    left = p.flush(30)
    check(left == 0, f"{left} records still undelivered after 30s")
    check(not errors, f"delivery failed: {errors[:3]}")
    check_eq(len(acks), len(records), "delivery reports")
    return acks


def as_record(msg):
    headers = msg.headers() or []
    ids = [v.decode() for k, v in headers if k == "id"]
    check(ids, f"record at {msg.partition()}/{msg.offset()} lacks its id header")
    return {"id": ids[0], "key": msg.key(), "value": msg.value(),
            "headers": [(k, v) for k, v in headers], "partition": msg.partition(),
            "offset": msg.offset()}


def consume_n(c, n, timeout_s=60):
    out = []

    def step():
        msg = c.poll(0.2)
        if msg is None:
            return
        if msg.error():
            raise KafkaException(msg.error())
        out.append(as_record(msg))

    wait_until(lambda: len(out) >= n, timeout_s, f"{n} records (got {len(out)})", step)
    return out


def create_topic(admin, name, partitions, config=None):
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})],
                                  operation_timeout=30, request_timeout=30)
    futures[name].result(timeout=40)
    # The topic is usable once metadata lists all its partitions with a leader.
    def ready():
        md = admin.list_topics(name, timeout=10).topics.get(name)
        return (md is not None and md.error is None and len(md.partitions) == partitions
                and all(p.leader >= 0 for p in md.partitions.values()))
    wait_until(ready, 30, f"metadata for new topic {name}")


class State:
    pass


S = State()


def test_create_topic():
    S.admin = AdminClient(BASE)
    S.topic = unique("cfk-main")
    create_topic(S.admin, S.topic, PARTITIONS)
    md = S.admin.list_topics(S.topic, timeout=10).topics[S.topic]
    check_eq(sorted(md.partitions), list(range(PARTITIONS)), "partitions of the new topic")


def test_produce_keyed_headers_nulls():
    S.records = sample_records("a", 300)
    p = producer()
    S.acks = produce_all(p, S.topic, S.records)
    check_keyed_partitions(S.records, S.acks, PARTITIONS, "keyed records")


def test_group_consumes_all_once_in_order_and_commits():
    S.group = unique("cfk-group")
    c = consumer(S.group)
    c.subscribe([S.topic])
    got = consume_n(c, len(S.records))
    # Nothing more must arrive: each record exactly once.
    extra = c.poll(1.0)
    check(extra is None or extra.error() is not None,
          f"an extra record arrived: {extra and as_record(extra)}")
    verify_consumed(S.records, S.acks, got, "first consumer")
    c.commit(asynchronous=False)
    ends = {}
    for r in got:
        ends[r["partition"]] = max(ends.get(r["partition"], -1), r["offset"] + 1)
    committed = c.committed([TopicPartition(S.topic, p) for p in range(PARTITIONS)], timeout=10)
    for tp in committed:
        check_eq(tp.offset, ends.get(tp.partition, -1001), f"committed offset of partition {tp.partition}")
    c.close()


def test_restarted_consumer_resumes_at_committed_offset():
    more = sample_records("b", 100)
    acks = produce_all(producer(), S.topic, more)
    c = consumer(S.group)
    c.subscribe([S.topic])
    got = consume_n(c, len(more))
    extra = c.poll(1.0)
    check(extra is None or extra.error() is not None,
          f"restarted consumer re-read {extra and as_record(extra)} (before the committed offset?)")
    verify_consumed(more, acks, got, "restarted consumer")
    c.commit(asynchronous=False)
    c.close()


class Member(threading.Thread):
    """A group member polling in its own thread; commits synchronously before it gives up
    partitions so that the next owner starts exactly where it stopped."""

    def __init__(self, name, group, topic, sink, lock):
        super().__init__(daemon=True)
        self.name_ = name
        self.sink, self.lock = sink, lock
        self.assignment = set()
        self.stop = threading.Event()
        self.error = None
        self.c = consumer(group, **{"partition.assignment.strategy": "range"})
        self.topic = topic

    def on_assign(self, c, parts):
        self.assignment = {p.partition for p in parts}

    def on_revoke(self, c, parts):
        try:
            c.commit(asynchronous=False)
        except KafkaException:
            pass  # nothing consumed yet: no offsets to commit
        self.assignment = set()

    def run(self):
        try:
            self.c.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
            while not self.stop.is_set():
                msg = self.c.poll(0.1)
                if msg is None:
                    continue
                if msg.error():
                    raise KafkaException(msg.error())
                with self.lock:
                    self.sink.append((self.name_, as_record(msg)))
            self.c.commit(asynchronous=False)
        except Exception as e:  # noqa: BLE001 - reported by the test thread
            self.error = e
        finally:
            self.c.close()


def test_group_members_split_partitions_and_rebalance_loses_nothing():
    topic = unique("cfk-group2")
    create_topic(S.admin, topic, 6)
    group = unique("cfk-split")
    sink, lock = [], threading.Lock()
    first = sample_records("c", 120)
    acks = produce_all(producer(), topic, first)
    m1 = Member("m1", group, topic, sink, lock)
    m2 = Member("m2", group, topic, sink, lock)
    members = [m1, m2]
    for m in members:
        m.start()

    def split(ms):
        sets = [m.assignment for m in ms]
        union = set().union(*sets)
        return (all(sets) and union == set(range(6))
                and sum(len(s) for s in sets) == 6)

    def healthy():
        for m in members:
            check(m.error is None, f"member {m.name_} failed: {m.error}")

    wait_until(lambda: (healthy(), split(members))[1], 60,
               "two members to split 6 partitions between them")
    wait_until(lambda: len(sink) >= len(first), 60, "the two members to consume the first batch")
    m3 = Member("m3", group, topic, sink, lock)
    members.append(m3)
    m3.start()
    second = sample_records("d", 120)
    acks.update(produce_all(producer(), topic, second))
    wait_until(lambda: (healthy(), split(members))[1], 60,
               "a rebalance giving each of three members some of the 6 partitions")
    third = sample_records("e", 120)
    acks.update(produce_all(producer(), topic, third))
    everything = first + second + third
    wait_until(lambda: (healthy(), len(sink) >= len(everything))[1], 60,
               f"all {len(everything)} records across the three members")
    for m in members:
        m.stop.set()
    for m in members:
        m.join(30)
    healthy()
    by_member = {}
    for name, _ in sink:
        by_member[name] = by_member.get(name, 0) + 1
    check(by_member.get("m3", 0) > 0, f"the third member consumed nothing: {by_member}")
    # verify_consumed wants one sequence per partition: keep the arrival order.
    verify_consumed(everything, acks, [r for _, r in sink], "three-member group")


def roundtrip_codec(codec):
    topic = unique(f"cfk-{codec}")
    create_topic(S.admin, topic, 2)
    recs = [{"id": f"{codec}-{i}", "key": f"k{i}".encode(),
             "value": (f"{codec} payload {i} " * 40).encode(),
             "headers": [("id", f"{codec}-{i}".encode())]} for i in range(200)]
    acks = produce_all(producer(compression_type=codec, linger_ms=20), topic, recs)
    c = consumer(unique("cfk-codec"))
    c.subscribe([topic])
    got = consume_n(c, len(recs))
    c.close()
    verify_consumed(recs, acks, got, f"{codec} round trip")


def test_compression_codecs_round_trip():
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        roundtrip_codec(codec)


def test_topic_compression_type_recompresses():
    # The broker recompresses gzip and uncompressed batches to the topic's zstd; an
    # idempotent producer's sequences survive it.
    topic = unique("cfk-topic-zstd")
    create_topic(S.admin, topic, 2, {"compression.type": "zstd"})
    recs = sample_records("z", 200)
    acks = produce_all(producer(compression_type="gzip", linger_ms=20), topic, recs[:100])
    acks.update(produce_all(producer(compression_type="none", enable_idempotence=True),
                            topic, recs[100:]))
    c = consumer(unique("cfk-topic-zstd"))
    c.subscribe([topic])
    got = consume_n(c, len(recs))
    c.close()
    verify_consumed(recs, acks, got, "compression.type=zstd topic")


def test_log_append_time_topic():
    # Records produced with an old timestamp are read back with the broker's clock.
    topic = unique("cfk-append-time")
    create_topic(S.admin, topic, 1, {"message.timestamp.type": "LogAppendTime"})
    day_ago = int(time.time() * 1000) - 86_400_000
    before = int(time.time() * 1000)
    p = producer()
    for i in range(5):
        p.produce(topic, value=f"lat{i}".encode(), timestamp=day_ago + i)
    check_eq(p.flush(30), 0, "undelivered records")
    after = int(time.time() * 1000)
    c = consumer(unique("cfk-append-time"))
    c.subscribe([topic])
    got = []

    def step():
        msg = c.poll(0.2)
        if msg is not None:
            if msg.error():
                raise KafkaException(msg.error())
            got.append(msg)

    wait_until(lambda: len(got) >= 5, 60, f"5 records (got {len(got)})", step)
    c.close()
    for msg in got:
        kind, ts = msg.timestamp()
        check_eq(kind, TIMESTAMP_LOG_APPEND_TIME, f"timestamp type at offset {msg.offset()}")
        check(before - 1000 <= ts <= after + 1000,
              f"timestamp {ts} at offset {msg.offset()} is not the broker's append time "
              f"(produced between {before} and {after})")


def test_one_mib_record_round_trips():
    topic = unique("cfk-big")
    create_topic(S.admin, topic, 1, {"max.message.bytes": str(BIG_TOPIC_MAX_MESSAGE_BYTES)})
    value = bytes((i * 7919 + 13) % 251 for i in range(ONE_MIB))
    rec = [{"id": "big", "key": b"big", "value": value, "headers": [("id", b"big")]}]
    p = producer(message_max_bytes=BIG_TOPIC_MAX_MESSAGE_BYTES, compression_type="none")
    acks = produce_all(p, topic, rec)
    c = consumer(unique("cfk-big"), fetch_max_bytes=4 * ONE_MIB,
                 max_partition_fetch_bytes=4 * ONE_MIB,
                 receive_message_max_bytes=8 * ONE_MIB)
    c.subscribe([topic])
    got = consume_n(c, 1)
    c.close()
    check_eq(len(got[0]["value"]), ONE_MIB, "size of the consumed 1 MiB record")
    verify_consumed(rec, acks, got, "1 MiB record")


def test_list_offsets_by_timestamp():
    topic = unique("cfk-time")
    create_topic(S.admin, topic, 1)
    base = int(time.time() * 1000) - 60_000
    p = producer()
    recs = [{"id": f"t{i}", "key": None, "value": f"t{i}".encode(), "headers": [("id", f"t{i}".encode())]}
            for i in range(10)]
    for i, r in enumerate(recs):
        p.produce(topic, value=r["value"], headers=r["headers"], timestamp=base + i * 1000)
    check_eq(p.flush(30), 0, "undelivered timestamped records")
    c = consumer(unique("cfk-time"))
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    check_eq((lo, hi), (0, 10), "earliest and latest offsets")
    for ts, want in [(base, 0), (base + 4500, 5), (base + 9000, 9), (base - 10_000, 0)]:
        got = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)[0]
        check(got.error is None, f"offsets_for_times({ts}) failed: {got.error}")
        check_eq(got.offset, want, f"offset for timestamp base+{ts - base}ms")
    after = c.offsets_for_times([TopicPartition(topic, 0, base + 60_000_000)], timeout=10)[0]
    check_eq(after.offset, -1, "offset for a timestamp after the last record (none)")
    c.close()


def test_idempotent_producer_writes_each_record_once():
    topic = unique("cfk-idem")
    create_topic(S.admin, topic, 3)
    recs = sample_records("i", 500)
    p = producer(enable_idempotence=True, max_in_flight_requests_per_connection=5,
                 linger_ms=1, batch_num_messages=20)
    acks = produce_all(p, topic, recs)
    c = consumer(unique("cfk-idem"))
    c.subscribe([topic])
    got = consume_n(c, len(recs))
    extra = c.poll(1.0)
    check(extra is None or extra.error() is not None, "a duplicate arrived after all records")
    c.close()
    verify_consumed(recs, acks, got, "idempotent producer")
    check_keyed_partitions(recs, acks, 3, "idempotent producer")


def main():
    r = Runner("confluent-kafka")
    r.step("create topic with 4 partitions (AdminClient)", test_create_topic)
    r.step("produce keyed records with headers, null keys and null values", test_produce_keyed_headers_nulls)
    r.step("group consumes all exactly once in per-partition order, commits", test_group_consumes_all_once_in_order_and_commits)
    r.step("restarted consumer resumes at the committed offset", test_restarted_consumer_resumes_at_committed_offset)
    r.step("two members split partitions, a third joins, nothing lost", test_group_members_split_partitions_and_rebalance_loses_nothing)
    r.step("gzip, snappy, lz4, zstd round-trip", test_compression_codecs_round_trip)
    r.step("topic compression.type=zstd recompresses gzip and uncompressed batches",
           test_topic_compression_type_recompresses)
    r.step("message.timestamp.type=LogAppendTime stamps the broker's time", test_log_append_time_topic)
    r.step("1 MiB record round-trips", test_one_mib_record_round_trips)
    r.step("ListOffsets by timestamp (offsets_for_times)", test_list_offsets_by_timestamp)
    r.step("idempotent producer writes each record once", test_idempotent_producer_writes_each_record_once)
    r.finish()


if __name__ == "__main__":
    main()
