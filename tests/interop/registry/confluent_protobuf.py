"""confluent-kafka's ProtobufSerializer and ProtobufDeserializer (Python) against a strand
registry and broker, with a message that imports a second .proto file (a reference across two
files), and across to strand's own Protobuf framing (`strand produce --protobuf-schema` /
`strand consume --protobuf`, i.e. the Rust client's serializer and deserializer), in both
directions. The Python message classes are generated at test time with grpcio-tools' protoc.

Usage: confluent_protobuf.py http://REGISTRY_HOST:PORT KAFKA_HOST:PORT STRAND_BIN
"""

import importlib
import json
import os
import subprocess
import sys
import tempfile

from grpc_tools import protoc

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

TOPIC = "interop-protobuf"
ADDRESS = 'syntax = "proto3";\npackage shop;\nmessage Address { string city = 1; int32 zip = 2; }\n'
ORDER = (
    'syntax = "proto3";\npackage shop;\nimport "address.proto";\n'
    "message Order { string id = 1; int64 total = 2; Address ship_to = 3; }\n"
)


def strand(bin_, kafka, registry, *args, stdin=""):
    env = dict(os.environ, STRAND_BOOTSTRAP=kafka, STRAND_REGISTRY=registry)
    done = subprocess.run([bin_, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, f"strand {' '.join(args)}: {done.stderr}"
    return done.stdout


def generate(work):
    """Writes both files and compiles them to Python modules in `work`; returns order_pb2."""
    for name, text in (("address.proto", ADDRESS), ("order.proto", ORDER)):
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    assert protoc.main(["protoc", f"-I{work}", f"--python_out={work}", "address.proto", "order.proto"]) == 0
    sys.path.insert(0, work)
    return importlib.import_module("order_pb2")


def as_dict(order):
    return {"id": order.id, "total": order.total, "city": order.ship_to.city, "zip": order.ship_to.zip}


def main():
    registry, kafka, bin_ = sys.argv[1], sys.argv[2], sys.argv[3]
    client = SchemaRegistryClient({"url": registry})
    strand(bin_, kafka, registry, "topics", "create", TOPIC, "--partitions", "1")
    work = tempfile.mkdtemp()
    order_pb2 = generate(work)
    Order = order_pb2.Order
    from address_pb2 import Address  # noqa: E402 (generated above)

    serializer = ProtobufSerializer(Order, client, {"use.deprecated.format": False})
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    python_orders = [
        Order(id="py-1", total=1200, ship_to=Address(city="Lyon", zip=69001)),
        Order(id="py-2", total=9_000_000_000, ship_to=Address(city="Oslo", zip=150)),
    ]
    producer = Producer({"bootstrap.servers": kafka})
    for order in python_orders:
        framed = serializer(order, ctx)
        assert framed[0] == 0, "magic byte"
        producer.produce(TOPIC, value=framed)
    assert producer.flush(30) == 0, "undelivered records"
    latest = client.get_latest_version(f"{TOPIC}-value")
    assert latest.schema.schema_type == "PROTOBUF", latest.schema.schema_type
    refs = [(r.name, r.subject) for r in latest.schema.references]
    assert refs == [("address.proto", "address.proto")], refs
    print(f"ProtobufSerializer registered schema id {latest.schema_id} with a reference to address.proto")

    # strand's side: the Python frames decode (the writer's schema and its reference fetched
    # by id), and strand's own frames go after them, from the same two .proto files.
    strand(bin_, kafka, registry, "produce", TOPIC,
           "--protobuf-schema", os.path.join(work, "order.proto"), "--message", "shop.Order",
           "--proto-import", f"address.proto={os.path.join(work, 'address.proto')}",
           stdin='{"id":"strand-3","total":"7","shipTo":{"city":"Kyiv","zip":1001}}\n')
    out = strand(bin_, kafka, registry, "consume", TOPIC, "--from-beginning", "--count", "3", "--protobuf")
    decoded = [json.loads(line) for line in out.splitlines()]
    got = [
        {"id": d.get("id", ""), "total": int(d.get("total", 0)),
         "city": d.get("shipTo", {}).get("city", ""), "zip": d.get("shipTo", {}).get("zip", 0)}
        for d in decoded
    ]
    expected = [as_dict(o) for o in python_orders] + [{"id": "strand-3", "total": 7, "city": "Kyiv", "zip": 1001}]
    assert got == expected, decoded
    print("strand consume --protobuf decoded ProtobufSerializer's records")

    deserializer = ProtobufDeserializer(Order, {"use.deprecated.format": False}, client)
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": "protobuf-interop", "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    seen, idle = [], 0
    while len(seen) < 3 and idle < 10:
        message = consumer.poll(1.0)
        if message is None:
            idle += 1
            continue
        assert not message.error(), message.error()
        seen.append(as_dict(deserializer(message.value(), ctx)))
    consumer.close()
    assert seen == expected, seen
    print("ProtobufDeserializer decoded strand produce --protobuf-schema's record")
    print("confluent-kafka Protobuf interop passed")


if __name__ == "__main__":
    main()
