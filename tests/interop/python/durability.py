"""Durability: an idempotent confluent-kafka producer with acks=all writes while the broker
is SIGKILLed and restarted on the same data directory and port; afterwards every
acknowledged record must be in the log, in order, exactly once.

Starts its own broker through tests/interop/broker ($INTEROP_TARGET: strand or kafka)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import TARGET, Runner, check, check_eq, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
BROKER = os.path.join(HERE, "..", "broker")
TOPIC = "durable"
PARTS = 3


class Broker:
    """One broker process group, started through tests/interop/broker."""

    def __init__(self, data_dir, port=0):
        self.log = open(os.path.join(os.path.dirname(data_dir), f"broker-{time.monotonic_ns()}.log"), "w+")
        self.proc = subprocess.Popen([BROKER, TARGET, data_dir, str(port)], stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, start_new_session=True)
        self.addr = None
        lines = []

        def read():
            for line in self.proc.stdout:
                lines.append(line)
                m = re.match(r"kafka listening on (\S+)", line)
                if m and self.addr is None:
                    self.addr = m.group(1)
        threading.Thread(target=read, daemon=True).start()

        def up():
            check(self.proc.poll() is None, f"broker exited during start-up: {self.stderr()}")
            return self.addr
        wait_until(up, 150, "the broker to print `kafka listening on`")

    def stderr(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

        # The group leader is reaped at once; the broker process itself (a JVM under the
        # launcher for Kafka) may take a moment longer to die and free the port.
        def gone():
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return True
            return False
        wait_until(gone, 30, "the killed broker's processes to exit")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def run_durability():
    work = tempfile.mkdtemp(prefix="strand-interop-durability-")
    data = os.path.join(work, "data")
    broker = Broker(data)
    addr = broker.addr
    port = int(addr.rsplit(":", 1)[1])
    try:
        admin = AdminClient({"bootstrap.servers": addr, "log_level": 2})
        admin.create_topics([NewTopic(TOPIC, PARTS, 1)])[TOPIC].result(timeout=30)
        acked, failed, lock = {}, [], threading.Lock()
        stop = threading.Event()
        p = Producer({"bootstrap.servers": addr, "acks": "all", "enable.idempotence": True,
                      "partitioner": "murmur2_random", "linger.ms": 2,
                      "message.timeout.ms": 120000, "retry.backoff.ms": 100,
                      "reconnect.backoff.max.ms": 500,
                      # connection refused while the broker is down is expected: keep quiet
                      "log_level": 2})

        def report(err, msg):
            with lock:
                if err is not None:
                    failed.append(str(err))
                else:
                    acked[int(msg.value())] = (msg.partition(), msg.offset())

        sent = [0]

        def produce():
            n = 0
            while not stop.is_set():
                try:
                    p.produce(TOPIC, key=f"k{n % 50}".encode(), value=str(n).encode(),
                              on_delivery=report)
                    n += 1
                except BufferError:
                    pass  # queue full while the broker is down: serve callbacks, retry
                p.poll(0.001 if n % 20 else 0.005)
                sent[0] = n
            p.flush(120)

        t = threading.Thread(target=produce, daemon=True)
        t.start()
        wait_until(lambda: len(acked) >= 3000, 60, "3000 acknowledged records before the kill")
        broker.kill()
        acked_at_kill = len(acked)
        broker = Broker(data, port)
        check_eq(broker.addr, addr, "address of the restarted broker")
        wait_until(lambda: len(acked) >= acked_at_kill + 3000, 120,
                   "3000 more acknowledged records after the restart")
        stop.set()
        t.join(150)
        check(not t.is_alive(), "producer did not finish flushing")
        check(not failed, f"{len(failed)} records failed delivery, e.g. {failed[:3]}")
        check_eq(len(acked), sent[0], "acknowledged records (all sent ones)")

        c = Consumer({"bootstrap.servers": addr, "log_level": 2, "group.id": "durability-check",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        ends = {}
        for part in range(PARTS):
            _, hi = c.get_watermark_offsets(TopicPartition(TOPIC, part), timeout=10)
            ends[part] = hi
        c.assign([TopicPartition(TOPIC, part, 0) for part in range(PARTS)])
        got = {part: [] for part in range(PARTS)}

        def step():
            msg = c.poll(0.2)
            if msg is None:
                return
            if msg.error():
                raise KafkaException(msg.error())
            got[msg.partition()].append((msg.offset(), int(msg.value())))

        wait_until(lambda: all(len(got[q]) >= ends[q] for q in range(PARTS)), 120,
                   lambda: f"reading back the stored records: high watermarks {ends}, read "
                           f"{ {q: len(v) for q, v in got.items()} }", step)
        c.close()
        seen = {}
        for part, recs in got.items():
            offsets = [o for o, _ in recs]
            check_eq(offsets, list(range(len(recs))), f"offsets of partition {part} (gapless)")
            values = [v for _, v in recs]
            check_eq(values, sorted(values), f"partition {part}: records in the order produced")
            for off, v in recs:
                check(v not in seen, f"record {v} stored twice ({seen.get(v)} and {(part, off)})")
                seen[v] = (part, off)
        lost = [v for v in acked if v not in seen]
        check(not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:5]}")
        moved = [v for v, at in acked.items() if seen[v] != at]
        check(not moved, f"{len(moved)} records stored elsewhere than acknowledged, e.g. "
                         f"{[(v, acked[v], seen[v]) for v in moved[:3]]}")
        print(f"durability: {len(acked)} acknowledged records ({acked_at_kill} before the kill), "
              "all present once and in order", flush=True)
    except Exception:
        print(f"broker log tail:\n{broker.stderr()}", file=sys.stderr)
        raise
    finally:
        broker.stop()
    shutil.rmtree(work, ignore_errors=True)


def main():
    r = Runner("durability")
    r.step("acks=all + idempotence survives SIGKILL and restart", run_durability)
    r.finish()


if __name__ == "__main__":
    main()
