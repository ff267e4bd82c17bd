#!/usr/bin/env python3
"""Producer and consumer performance through librdkafka (confluent-kafka), the harness's
second client next to Kafka's own ProducerPerformance / ConsumerPerformance.

    perf.py produce --bootstrap HOST:PORT --topic T --num-records N [--record-size 1024]
                    [--throughput RECORDS_PER_S | -1] [--acks 1|all] [--partitions 6]
                    [--linger-ms 5] [--batch-size 1000000] [--warmup-records W]
                    [--timeout SECS]
    perf.py consume --bootstrap HOST:PORT --topic T --num-records N --group G [--timeout SECS]

Both print progress to stderr and one last stdout line `RESULT {json}` (figures, the settings
used and the client's versions) that bench/lib/report.py reads. The producer keeps librdkafka's
defaults (linger.ms 5, batch.size 1 000 000, compression none, in-flight unbounded) and sets
acks, enable.idempotence only for acks=all (as the Java producer does by default) and a
message timeout; the consumer keeps its defaults (auto.offset.reset=earliest, no commits). produce creates the topic (PARTITIONS, replication factor 1) unless it exists, sends N
records of RECORD_SIZE bytes with null keys (partitioned like the Java producer's default:
librdkafka's sticky partitioner for null keys), as fast as the client can or at a fixed
THROUGHPUT, and waits for every delivery report. The latency of a record is librdkafka's own
`Message.latency()`: from produce() to the broker's acknowledgement, taken in the client's
I/O thread (as ProducerPerformance takes it in the Java producer's), so Python's callback
scheduling does not add to it; the first W records (a warm-up, as ProducerPerformance's
--warmup-records) are delivered and checked but left out of the latency figures. consume reads N records from the start of T in a new group and
reports MB/s from the partitions' assignment to the last record, leaving out the group join
(as ConsumerPerformance's fetch.MB.sec). MB means 1024 * 1024 bytes in both, as in Kafka's tools.
Exit status 1 if a record failed or the work did not finish within --timeout.
"""
import argparse
import json
import os
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

MB = 1024 * 1024
# The Java producer's throttler sleeps only once it is this far ahead of the target rate;
# shorter sleeps would be busy waits that take a core from the broker.
MIN_SLEEP_S = 0.002


def log(msg):
    print(f"[rdkafka-perf {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(sorted_xs, q):
    if not sorted_xs:
        return None
    return sorted_xs[min(len(sorted_xs) - 1, int(q * len(sorted_xs)))]


def client_version():
    binding = confluent_kafka.version()
    binding = binding[0] if isinstance(binding, tuple) else binding
    return f"confluent-kafka {binding}, librdkafka {confluent_kafka.libversion()[0]}"


def ensure_topic(bootstrap, topic, partitions, timeout):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(timeout=timeout)
    if topic in md.topics and md.topics[topic].error is None:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                                  operation_timeout=timeout, request_timeout=timeout)
    try:
        futures[topic].result(timeout=timeout)
    except KafkaException as e:
        if e.args[0].name() != "TOPIC_ALREADY_EXISTS":
            raise


def producer_config(args):
    return {
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "linger.ms": args.linger_ms,
        "batch.size": args.batch_size,
        "compression.type": "none",
        # As the Java producer: idempotent by default, which it keeps only for acks=all.
        "enable.idempotence": args.acks == "all",
        "message.timeout.ms": int(args.timeout * 1000),
    }


def produce(args):
    ensure_topic(args.bootstrap, args.topic, args.partitions, 30)
    config = producer_config(args)
    log(f"producer settings: {json.dumps(config)}")
    latencies = []
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            latencies.append(msg.latency())

    def warmed_up(err, msg):  # a warm-up record: checked, but not in the latency figures
        if err is not None:
            errors.append(str(err))
        else:
            warm.append(1)

    warm = []

    config["on_delivery"] = delivered
    producer = Producer(config)
    payload = os.urandom(args.record_size)
    n, rate, topic = args.num_records, args.throughput, args.topic
    deadline = time.monotonic() + args.timeout
    start = time.monotonic()
    sent = 0
    while sent < n:
        if rate > 0:
            ahead = start + sent / rate - time.monotonic()
            if ahead >= MIN_SLEEP_S:
                producer.poll(ahead)
                continue
        try:
            if sent < args.warmup_records:
                producer.produce(topic, payload, on_delivery=warmed_up)
            else:
                producer.produce(topic, payload)
        except BufferError:
            producer.poll(0.05)  # queue full: wait for deliveries
            continue
        sent += 1
        if sent % 1000 == 0:
            producer.poll(0)
            if time.monotonic() > deadline:
                log(f"timed out after sending {sent} of {n}")
                break
            if sent % 100_000 == 0:
                log(f"{sent} sent, {len(latencies)} delivered")
    remaining = producer.flush(max(0.0, deadline - time.monotonic()))
    elapsed = time.monotonic() - start
    latencies.sort()
    done = len(latencies) + len(warm)
    ms = lambda q: None if not latencies else round(percentile(latencies, q) * 1000, 3)  # noqa: E731
    result = {
        "mode": "produce", "topic": topic, "records": done, "errors": len(errors),
        "undelivered": remaining, "elapsed_s": round(elapsed, 3),
        "records_per_s": round(done / elapsed, 1),
        "mb_per_s": round(done * args.record_size / elapsed / MB, 2),
        "warmup_records": args.warmup_records,
        "latency_avg_ms": None if not latencies else round(sum(latencies) / len(latencies) * 1000, 3),
        "latency_p50_ms": ms(0.50), "latency_p99_ms": ms(0.99), "latency_p999_ms": ms(0.999),
        "latency_max_ms": None if not latencies else round(latencies[-1] * 1000, 3),
        "target_records_per_s": rate, "record_size": args.record_size,
        "settings": {k: v for k, v in config.items() if k != "on_delivery"},
        "client": client_version(),
    }
    if errors:
        log(f"{len(errors)} delivery errors, first: {errors[0]}")
    print("RESULT " + json.dumps(result), flush=True)
    return 0 if done == n else 1


def consume(args):
    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    log(f"consumer settings: {json.dumps(config)}")
    consumer = Consumer(config)
    assigned = []
    t_subscribe = time.monotonic()
    # librdkafka starts fetching (into its own queue) as soon as partitions are assigned, so
    # the rate is counted from the assignment, not from the first record handed over.
    consumer.subscribe([args.topic], on_assign=lambda _c, _p: assigned.append(time.monotonic()))
    n = args.num_records
    count = nbytes = 0
    deadline = t_subscribe + args.timeout
    first = last = None
    try:
        while count < n and time.monotonic() < deadline:
            before = count
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                if msg.error() is not None:
                    if msg.error().fatal():
                        raise KafkaException(msg.error())
                    continue
                count += 1
                nbytes += len(msg.value())
            if count > before:
                last = time.monotonic()
                first = first or last
    finally:
        consumer.close()
    start = assigned[0] if assigned else first
    fetch_s = (last - start) if first is not None and last > start else None
    result = {
        "mode": "consume", "topic": args.topic, "records": count, "bytes": nbytes,
        "join_s": None if start is None else round(start - t_subscribe, 3),
        "fetch_s": None if fetch_s is None else round(fetch_s, 3),
        "fetch_mb_per_s": None if fetch_s is None else round(nbytes / fetch_s / MB, 2),
        "fetch_records_per_s": None if fetch_s is None else round(count / fetch_s, 1),
        "settings": config,
        "client": client_version(),
    }
    print("RESULT " + json.dumps(result), flush=True)
    if count < n:
        log(f"read {count} of {n} records before the timeout")
        return 1
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    pp = sub.add_parser("produce")
    pc = sub.add_parser("consume")
    for s in (pp, pc):
        s.add_argument("--bootstrap", required=True)
        s.add_argument("--topic", required=True)
        s.add_argument("--num-records", type=int, required=True)
        s.add_argument("--timeout", type=float, default=170.0)
    pp.add_argument("--record-size", type=int, default=1024)
    pp.add_argument("--throughput", type=float, default=-1)
    pp.add_argument("--acks", choices=["0", "1", "all"], default="1")
    pp.add_argument("--warmup-records", type=int, default=0,
                    help="first records left out of the latency figures (as ProducerPerformance)")
    pp.add_argument("--partitions", type=int, default=6)
    pp.add_argument("--linger-ms", type=int, default=5)
    pp.add_argument("--batch-size", type=int, default=1_000_000)
    pc.add_argument("--group", required=True)
    args = p.parse_args()
    return produce(args) if args.mode == "produce" else consume(args)


if __name__ == "__main__":
    sys.exit(main())
