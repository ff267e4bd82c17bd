"""confluent-kafka's SchemaRegistryClient, AvroSerializer and AvroDeserializer against a
strand registry: register, look up, evolve a schema under BACKWARD, frame and decode
records, and be refused an incompatible change with 409.

With a Kafka bootstrap address, also reads the registry's own records back from the
`_schemas` topic with a Kafka consumer.

Usage: confluent_client.py http://HOST:PORT [KAFKA_HOST:PORT]
"""

import json
import sys

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

SUBJECT = "interop-users-value"


def user(*extra):
    fields = [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}]
    return json.dumps({"type": "record", "name": "User", "namespace": "interop", "fields": fields + list(extra)})


def expect_error(status, code, call, *args):
    try:
        call(*args)
    except SchemaRegistryError as e:
        assert (e.http_status_code, e.error_code) == (status, code), f"{call.__name__}: {e}"
        return e
    raise AssertionError(f"{call.__name__} succeeded, expected {code}")


def schemas_topic_records(bootstrap):
    """Every (key, value) of `_schemas` partition 0, as JSON."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "registry-interop", "enable.auto.commit": False})
    consumer.assign([TopicPartition("_schemas", 0, 0)])
    records, idle = [], 0
    while idle < 3:
        message = consumer.poll(1.0)
        if message is None:
            idle += 1
            continue
        assert not message.error(), message.error()
        idle = 0
        value = json.loads(message.value()) if message.value() is not None else None
        records.append((json.loads(message.key()), value))
    consumer.close()
    return records


def main():
    client = SchemaRegistryClient({"url": sys.argv[1]})

    v1 = Schema(user(), "AVRO")
    id1 = client.register_schema(SUBJECT, v1)
    assert client.register_schema(SUBJECT, v1) == id1, "re-registering gave a new id"
    assert json.loads(client.get_schema(id1).schema_str) == json.loads(user())
    assert SUBJECT in client.get_subjects()
    latest = client.get_latest_version(SUBJECT)
    assert (latest.schema_id, latest.version) == (id1, 1), latest
    found = client.lookup_schema(SUBJECT, v1)
    assert (found.schema_id, found.version) == (id1, 1), found

    # Framed records: magic byte 0, the schema id, then Avro binary.
    ctx = SerializationContext("interop-users", MessageField.VALUE)
    serialize = AvroSerializer(client, user(), conf={"auto.register.schemas": False, "use.latest.version": True})
    framed = serialize({"id": 7, "name": "ada"}, ctx)
    assert framed[0] == 0 and int.from_bytes(framed[1:5], "big") == id1, framed[:5]
    assert AvroDeserializer(client)(framed, ctx) == {"id": 7, "name": "ada"}

    # Evolve under BACKWARD: an optional field with a default is accepted.
    assert client.get_compatibility() == "BACKWARD"
    v2 = Schema(user({"name": "email", "type": ["null", "string"], "default": None}), "AVRO")
    assert client.test_compatibility(SUBJECT, v2)
    id2 = client.register_schema(SUBJECT, v2)
    assert id2 != id1 and client.get_versions(SUBJECT) == [1, 2]
    reader = AvroDeserializer(client, user({"name": "email", "type": ["null", "string"], "default": None}))
    assert reader(framed, ctx) == {"id": 7, "name": "ada", "email": None}

    # A required field without a default is refused with 409, and nothing changes.
    v3 = Schema(user({"name": "age", "type": "int"}), "AVRO")
    assert not client.test_compatibility(SUBJECT, v3)
    expect_error(409, 409, client.register_schema, SUBJECT, v3)
    assert client.get_versions(SUBJECT) == [1, 2]

    if len(sys.argv) > 2:
        records = schemas_topic_records(sys.argv[2])
        versions = {(k["subject"], v["version"]): v["id"] for k, v in records if k["keytype"] == "SCHEMA" and v}
        assert versions.get((SUBJECT, 1)) == id1 and versions.get((SUBJECT, 2)) == id2, versions
        ids = {v["id"] for k, v in records if k["keytype"] == "SCHEMA_ID"}
        assert {id1, id2} <= ids, ids

    # Per-subject config, errors, deletes.
    client.set_compatibility(SUBJECT, "FULL")
    assert client.get_compatibility(SUBJECT) == "FULL"
    expect_error(404, 40401, client.get_latest_version, "no-such-subject")
    expect_error(404, 40403, client.get_schema, 999999)
    assert client.delete_version(SUBJECT, 1) == 1
    assert client.get_versions(SUBJECT) == [2]
    assert client.delete_subject(SUBJECT) == [2]
    assert client.delete_subject(SUBJECT, permanent=True) == [1, 2]
    assert SUBJECT not in client.get_subjects()
    print("confluent-kafka SchemaRegistryClient, AvroSerializer, AvroDeserializer: ok")


if __name__ == "__main__":
    main()
