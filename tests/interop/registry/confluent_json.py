"""confluent-kafka's JSONSerializer and JSONDeserializer (Python) against a strand registry
and broker, and across to strand's own JSON Schema framing (`strand produce/consume
--json-schema`, i.e. the Rust client's JsonSerializer/JsonDeserializer), in both directions:
the schema registers as schemaType JSON, the frames decode on the other side, and the
registry refuses a change Confluent's JSON Schema rules refuse, with their errorType.

Usage: confluent_json.py http://REGISTRY_HOST:PORT KAFKA_HOST:PORT STRAND_BIN
"""

import json
import os
import subprocess
import sys
import tempfile

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

TOPIC = "interop-json"
SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Event",
    "type": "object",
    "properties": {"kind": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["kind", "n"],
    "additionalProperties": False,
}


def strand(bin_, kafka, registry, *args, stdin=""):
    env = dict(os.environ, STRAND_BOOTSTRAP=kafka, STRAND_REGISTRY=registry)
    done = subprocess.run([bin_, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, f"strand {' '.join(args)}: {done.stderr}"
    return done.stdout


def main():
    registry, kafka, bin_ = sys.argv[1], sys.argv[2], sys.argv[3]
    client = SchemaRegistryClient({"url": registry})
    strand(bin_, kafka, registry, "topics", "create", TOPIC, "--partitions", "1")

    schema_str = json.dumps(SCHEMA)
    serializer = JSONSerializer(schema_str, client)
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    python_events = [{"kind": "py", "n": 1}, {"kind": "py", "n": 2}]
    producer = Producer({"bootstrap.servers": kafka})
    for event in python_events:
        framed = serializer(event, ctx)
        assert framed[0] == 0, "magic byte"
        producer.produce(TOPIC, value=framed)
    assert producer.flush(30) == 0, "undelivered records"
    latest = client.get_latest_version(f"{TOPIC}-value")
    assert latest.schema.schema_type == "JSON", latest.schema.schema_type
    print(f"JSONSerializer registered schema id {latest.schema_id} as JSON")

    # strand's side: the Python frames decode, and strand's frames go after them.
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(schema_str)
        path = f.name
    strand(bin_, kafka, registry, "produce", TOPIC, "--json-schema", path,
           stdin='{"kind":"strand","n":3}\n')
    out = strand(bin_, kafka, registry, "consume", TOPIC, "--from-beginning", "--count", "3", "--json-schema")
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == python_events + [{"kind": "strand", "n": 3}], lines
    versions = client.get_versions(f"{TOPIC}-value")
    assert versions == [1], f"strand re-registered the same schema: {versions}"
    print("strand consume --json-schema decoded JSONSerializer's records")

    deserializer = JSONDeserializer(schema_str, schema_registry_client=client)
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": "json-interop", "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    seen, idle = [], 0
    while len(seen) < 3 and idle < 10:
        message = consumer.poll(1.0)
        if message is None:
            idle += 1
            continue
        assert not message.error(), message.error()
        seen.append(deserializer(message.value(), ctx))
    consumer.close()
    assert seen == python_events + [{"kind": "strand", "n": 3}], seen
    print("JSONDeserializer decoded strand produce --json-schema's record")

    # Confluent's rules through the registry: a closed schema gains an optional property;
    # an open one may not (under BACKWARD, the default).
    evolved = dict(SCHEMA, properties=dict(SCHEMA["properties"], note={"type": "string"}))
    client.register_schema(f"{TOPIC}-value", Schema(json.dumps(evolved), "JSON"))
    open_v1 = {k: v for k, v in SCHEMA.items() if k != "additionalProperties"}
    client.register_schema("interop-open-value", Schema(json.dumps(open_v1), "JSON"))
    open_v2 = dict(open_v1, properties=dict(open_v1["properties"], note={"type": "string"}))
    try:
        client.register_schema("interop-open-value", Schema(json.dumps(open_v2), "JSON"))
    except SchemaRegistryError as e:
        assert (e.http_status_code, e.error_code) == (409, 409), e
        assert "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL" in e.error_message, e.error_message
    else:
        raise AssertionError("an optional property added to an open model was accepted")
    print("JSON Schema compatibility: closed model evolves, open model refused with 409")
    print("confluent-kafka JSON Schema interop passed")


if __name__ == "__main__":
    main()
