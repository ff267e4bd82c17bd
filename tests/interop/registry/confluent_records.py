"""`_schemas` records in Confluent Schema Registry's shapes, both ways, with a plain Kafka
client: records as Confluent writes them (SCHEMA with the schema text, CONTEXT, CONFIG,
MODE, DELETE_SUBJECT, CLEAR_SUBJECT; subjects of a context qualified, `:.ctx:s`, with that
context's own ids) are produced into `_schemas` and must be served by strand's REST API;
and what strand writes for a registration must be a SCHEMA record Confluent reads (the
schema text in its value, the qualified subject in its key).

Usage: confluent_records.py http://HOST:PORT KAFKA_HOST:PORT
"""

import json
import sys
import time
import urllib.error
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition

CONTEXT = ".restored"
SUBJECT = f":{CONTEXT}:payments-value"
PLAIN = "restored-plain-value"


def record(name, *fields):
    return json.dumps({"type": "record", "name": name, "namespace": "restore", "fields": list(fields)})


V1 = record("Payment", {"name": "id", "type": "long"})
V2 = record("Payment", {"name": "id", "type": "long"}, {"name": "note", "type": ["null", "string"], "default": None})


def get(base, path):
    try:
        with urllib.request.urlopen(base + path) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def request(base, method, path, body):
    data = json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    with urllib.request.urlopen(req) as response:
        return json.loads(response.read())


def until(what, check, timeout=30.0):
    """Waits for `check()` to hold, a bounded time, polling the REST API."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def produce(bootstrap, records):
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in records:
        producer.produce("_schemas", key=json.dumps(key).encode(),
                         value=None if value is None else json.dumps(value).encode(), partition=0)
    assert producer.flush(30) == 0, "records left unsent"


def schemas_topic_records(bootstrap):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "registry-records", "enable.auto.commit": False})
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
    base, bootstrap = sys.argv[1], sys.argv[2]

    # Confluent -> strand: what a Confluent registry (or a restore of its topic) writes.
    produce(bootstrap, [
        ({"keytype": "NOOP", "magic": 0}, None),
        ({"keytype": "CONTEXT", "tenant": "default", "context": CONTEXT, "magic": 0},
         {"tenant": "default", "context": CONTEXT}),
        ({"keytype": "SCHEMA", "subject": SUBJECT, "version": 1, "magic": 1},
         {"subject": SUBJECT, "version": 1, "id": 1, "schemaType": "AVRO", "schema": V1, "deleted": False}),
        ({"keytype": "SCHEMA", "subject": SUBJECT, "version": 2, "magic": 1},
         {"subject": SUBJECT, "version": 2, "id": 2, "schema": V2, "deleted": False}),
        ({"keytype": "CONFIG", "subject": SUBJECT, "magic": 0}, {"compatibilityLevel": "FULL"}),
        ({"keytype": "MODE", "subject": f":{CONTEXT}:", "magic": 0}, {"mode": "READONLY"}),
        ({"keytype": "SCHEMA", "subject": PLAIN, "version": 1, "magic": 1},
         {"subject": PLAIN, "version": 1, "id": 900, "schema": V1, "deleted": False}),
        ({"keytype": "SCHEMA", "subject": PLAIN, "version": 2, "magic": 1},
         {"subject": PLAIN, "version": 2, "id": 901, "schema": V2, "deleted": False}),
        ({"keytype": "DELETE_SUBJECT", "subject": PLAIN, "magic": 0}, {"subject": PLAIN, "version": 1}),
        ({"keytype": "CLEAR_SUBJECT", "subject": PLAIN, "magic": 0}, {"subject": PLAIN}),
    ])
    until("the restored context", lambda: CONTEXT in get(base, "/contexts")[1])
    until("the restored subject", lambda: get(base, f"/subjects/{SUBJECT}/versions")[1] == [1, 2])
    # Ids 1 and 2 of the context are its own, whatever the default context numbers.
    status, body = get(base, f"/schemas/ids/2?subject={SUBJECT}")
    assert status == 200 and json.loads(body["schema"]) == json.loads(V2), body
    status, body = get(base, f"/subjects/{SUBJECT}/versions/1")
    assert (body["id"], body["subject"]) == (1, SUBJECT), body
    assert get(base, f"/config/{SUBJECT}")[1] == {"compatibilityLevel": "FULL"}
    assert get(base, f"/mode/{SUBJECT}?defaultToGlobal=true")[1] == {"mode": "READONLY"}
    assert SUBJECT in get(base, "/subjects")[1]
    # DELETE_SUBJECT soft-deleted version 1 only.
    until("the soft delete", lambda: get(base, f"/subjects/{PLAIN}/versions")[1] == [2])
    assert get(base, f"/subjects/{PLAIN}/versions?deleted=true")[1] == [1, 2]
    assert get(base, "/schemas/ids/901")[0] == 200

    # strand -> Confluent: a registration in another context is a SCHEMA record of
    # Confluent's shape, schema text and qualified subject included, after a CONTEXT record.
    fresh = ":.written:orders-value"
    written = request(base, "POST", f"/subjects/{fresh}/versions", {"schema": V1})
    assert written == {"id": 1}, written
    records = schemas_topic_records(bootstrap)
    keys = [k for k, _ in records]
    assert {"keytype": "CONTEXT", "tenant": "default", "context": ".written", "magic": 0} in keys, keys
    values = [v for k, v in records if k == {"keytype": "SCHEMA", "subject": fresh, "version": 1, "magic": 1}]
    assert values, keys
    value = values[-1]
    assert (value["subject"], value["version"], value["id"], value["deleted"]) == (fresh, 1, 1, False), value
    assert json.loads(value["schema"]) == json.loads(V1), value
    print("_schemas records in Confluent's shapes, both ways, with contexts: ok")


if __name__ == "__main__":
    main()
