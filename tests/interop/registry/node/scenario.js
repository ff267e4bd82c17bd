// @kafkajs/confluent-schema-registry against a strand registry: register, look up, evolve a
// schema under BACKWARD, encode and decode framed records, and be refused an incompatible
// change with 409.  Usage: node scenario.js http://HOST:PORT
'use strict'
const assert = require('assert/strict')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

const subject = 'interop-node-value'
const user = (...extra) => ({
  type: 'record',
  name: 'NodeUser',
  namespace: 'interop',
  fields: [{ name: 'id', type: 'long' }, { name: 'name', type: 'string' }, ...extra],
})
const avro = schema => ({ type: SchemaType.AVRO, schema: JSON.stringify(schema) })

async function main() {
  const registry = new SchemaRegistry({ host: process.argv[2] })

  const { id: id1 } = await registry.register(avro(user()), { subject })
  assert.equal((await registry.register(avro(user()), { subject })).id, id1)
  assert.equal(await registry.getLatestSchemaId(subject), id1)
  assert.equal(await registry.getRegistryId(subject, 1), id1)
  assert.equal(await registry.getRegistryIdBySchema(subject, avro(user())), id1)

  const framed = await registry.encode(id1, { id: 7, name: 'ada' })
  assert.equal(framed[0], 0)
  assert.equal(framed.readInt32BE(1), id1)
  assert.deepEqual({ ...(await registry.decode(framed)) }, { id: 7, name: 'ada' })

  const optional = { name: 'email', type: ['null', 'string'], default: null }
  const { id: id2 } = await registry.register(avro(user(optional)), { subject })
  assert.notEqual(id2, id1)
  assert.equal(await registry.getLatestSchemaId(subject), id2)

  await assert.rejects(
    registry.register(avro(user({ name: 'age', type: 'int' })), { subject }),
    err => {
      assert.equal(err.status, 409, `${err}`)
      return true
    },
  )
  assert.equal(await registry.getLatestSchemaId(subject), id2)
  console.log('@kafkajs/confluent-schema-registry: ok')
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})
