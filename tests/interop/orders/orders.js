// The Node side of the orders interop test (tests/interop/orders/run): kafkajs for Kafka,
// @kafkajs/confluent-schema-registry for Confluent-framed Avro.
//
//   node orders.js consume BOOTSTRAP REGISTRY_URL TOPIC COUNT  // decode produce_orders' records
//   node orders.js produce BOOTSTRAP REGISTRY_URL TOPIC COUNT  // write node-0.. for consume_orders
//
// Both packages are the ones tests/interop/node and tests/interop/registry/node install.
'use strict'
const assert = require('assert/strict')
const fs = require('fs')
const path = require('path')
const interop = path.join(__dirname, '..')
const { Kafka, logLevel } = require(path.join(interop, 'node/node_modules/kafkajs'))
const { SchemaRegistry, SchemaType } = require(
  path.join(interop, 'registry/node/node_modules/@kafkajs/confluent-schema-registry'),
)

const SCHEMA = fs.readFileSync(path.join(interop, '../../schemas/order.avsc'), 'utf8')
const BASE_MILLIS = 1764000000000 // expected.py's BASE_MILLIS

const expected = (prefix, i, base) => ({
  order_id: `${prefix}-${i}`,
  customer_id: `customer-${i % 7}`,
  amount_cents: 1000 + ((i * 37) % 9000),
  currency: i % 2 === 0 ? 'EUR' : 'USD',
  created_at: base + i,
})

async function consume(kafka, registry, topic, count) {
  const consumer = kafka.consumer({ groupId: `orders-node-${process.pid}` })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const got = new Map()
  let failure = null
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`only ${got.size} of ${count} orders arrived in 60s`)),
      60000,
    )
    consumer.run({
      eachMessage: async ({ message }) => {
        try {
          const order = {
            ...(await registry.decode(message.value, {
              [SchemaType.AVRO]: { readerSchema: JSON.parse(SCHEMA) },
            })),
          }
          assert.equal(message.key.toString('utf8'), order.order_id, 'key is the order id')
          assert.ok(!got.has(order.order_id), `${order.order_id} decoded twice`)
          got.set(order.order_id, order)
        } catch (err) {
          failure = failure || err
        }
        if (failure || got.size >= count) {
          clearTimeout(timer)
          failure ? reject(failure) : resolve()
        }
      },
    })
  })
  try {
    await done
  } finally {
    await consumer.disconnect()
  }
  const first = got.get('order-0')
  assert.ok(first, 'order-0 decoded')
  const age = Date.now() - Number(first.created_at)
  assert.ok(age >= 0 && age < 600000, `created_at ${first.created_at} is of the last 10 minutes`)
  for (let i = 0; i < count; i++) {
    const want = expected('order', i, Number(first.created_at))
    const o = got.get(want.order_id)
    assert.ok(o, `${want.order_id} decoded`)
    assert.deepEqual(
      { ...o, amount_cents: Number(o.amount_cents), created_at: Number(o.created_at) },
      want,
    )
  }
  console.log(`@kafkajs/confluent-schema-registry decoded all ${count} produce_orders orders`)
}

async function produce(kafka, registry, topic, count) {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })
  await admin.disconnect()
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: SCHEMA },
    { subject: `${topic}-value` },
  )
  const messages = []
  for (let i = 0; i < count; i++) {
    const order = expected('node', i, BASE_MILLIS)
    messages.push({ key: order.order_id, value: await registry.encode(id, order) })
  }
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages, acks: -1 })
  await producer.disconnect()
  console.log(`@kafkajs/confluent-schema-registry wrote ${count} orders (schema id ${id})`)
}

async function main() {
  const [mode, bootstrap, url, topic, count] = process.argv.slice(2)
  if (!['consume', 'produce'].includes(mode) || !count) {
    throw new Error('usage: node orders.js consume|produce BOOTSTRAP REGISTRY_URL TOPIC COUNT')
  }
  const kafka = new Kafka({ brokers: [bootstrap], logLevel: logLevel.ERROR })
  const registry = new SchemaRegistry({ host: url })
  await (mode === 'consume' ? consume : produce)(kafka, registry, topic, Number(count))
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})
