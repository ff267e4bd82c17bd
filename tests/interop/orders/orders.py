"""confluent-kafka (Python) side of the orders interop test.

    orders.py consume BOOTSTRAP REGISTRY_URL TOPIC COUNT   # decode produce_orders' records
    orders.py produce BOOTSTRAP REGISTRY_URL TOPIC COUNT   # write py-0.. for consume_orders

`consume` reads the topic from the beginning with confluent-kafka's AvroDeserializer and
asserts every order (key = order id, field values as produce_orders writes them).
`produce` registers schemas/order.avsc under TOPIC-value through AvroSerializer and writes
COUNT orders keyed by their UTF-8 order id.
"""
import datetime
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from expected import BASE_MILLIS, check, expected

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = open(os.path.join(HERE, "../../../schemas/order.avsc")).read()
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def millis(value):
    # fastavro turns timestamp-millis into an aware datetime.
    if isinstance(value, datetime.datetime):
        return (value - EPOCH) // datetime.timedelta(milliseconds=1)
    return value


def consume(bootstrap, registry, topic, count):
    deser = AvroDeserializer(SchemaRegistryClient({"url": registry}), SCHEMA)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"orders-py-{os.getpid()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    orders = []
    deadline = time.monotonic() + 60
    try:
        while len(orders) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(orders)} of {count} orders arrived in 60s")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            order = deser(msg.value(), SerializationContext(topic, MessageField.VALUE))
            order["created_at"] = millis(order["created_at"])
            key = msg.key().decode("utf-8")
            if key != order["order_id"]:
                raise AssertionError(f"key {key!r} differs from order_id {order['order_id']!r}")
            orders.append(order)
    finally:
        consumer.close()
    check("order", count, orders)
    now = time.time() * 1000
    first = min(o["created_at"] for o in orders)
    if not now - 600_000 < first <= now:
        raise AssertionError(f"created_at {first} is not a timestamp of the last 10 minutes")
    print(f"confluent-kafka AvroDeserializer decoded all {count} produce_orders orders")


def produce(bootstrap, registry, topic, count):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        fut.result(timeout=30)
    ser = AvroSerializer(SchemaRegistryClient({"url": registry}), SCHEMA)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    failures = []

    def report(err, _msg):
        if err is not None:
            failures.append(err)

    for i in range(count):
        order = expected("py", i, BASE_MILLIS)
        value = ser(order, SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, key=order["order_id"].encode("utf-8"), value=value,
                         on_delivery=report)
        producer.poll(0)
    if producer.flush(30) != 0:
        raise AssertionError("records still undelivered after 30s")
    if failures:
        raise AssertionError(f"delivery failed: {failures[0]}")
    print(f"confluent-kafka AvroSerializer wrote {count} orders")


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] not in ("consume", "produce"):
        sys.exit(__doc__)
    {"consume": consume, "produce": produce}[sys.argv[1]](
        sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
