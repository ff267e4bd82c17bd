// Interop scenario for kafkajs (Node): topics through its admin client, keyed records with
// headers and nulls, consumer groups, committed offsets, rebalances, every codec (gzip is
// built in; snappy, lz4 and zstd through registered codecs), a 1 MiB record, ListOffsets by
// timestamp and the idempotent producer, against the broker at $BOOTSTRAP.
'use strict'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Kafka, CompressionTypes, CompressionCodecs, Partitioners, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4 = require('lz4js')
const xxh32 = require('lz4js/xxh32')
const zstd = require('@bokuweb/zstd-wasm')

const BOOTSTRAP = process.env.BOOTSTRAP || '127.0.0.1:9092'
const PARTITIONS = 4
const ONE_MIB = 1024 * 1024
const BIG_TOPIC_MAX_MESSAGE_BYTES = 3 * ONE_MIB

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
// Kafka's lz4 is the LZ4 frame format with independent blocks (Kafka refuses dependent
// ones); lz4js's own frame writer does not set that flag, so frames are built here from
// its block compressor, 64 KiB blocks, each with a fresh match table.
function lz4Frame (src) {
  const BLOCK = 64 * 1024
  const header = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0])
  header[6] = (xxh32.hash(0, header, 4, 2) >>> 8) & 0xff
  const parts = [header]
  for (let at = 0; at < src.length; at += BLOCK) {
    const size = Math.min(BLOCK, src.length - at)
    const out = Buffer.alloc(lz4.compressBound(size))
    const n = lz4.compressBlock(src, out, at, size, new Uint32Array(1 << 16))
    const len = Buffer.alloc(4)
    if (n === 0 || n >= size) {
      len.writeUInt32LE((0x80000000 | size) >>> 0)
      parts.push(len, Buffer.from(src.subarray(at, at + size)))
    } else {
      len.writeUInt32LE(n)
      parts.push(len, out.subarray(0, n))
    }
  }
  parts.push(Buffer.alloc(4))
  return Buffer.concat(parts)
}
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress (encoder) { return lz4Frame(encoder.buffer) },
  async decompress (buffer) { return Buffer.from(lz4.decompress(buffer)) }
})
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress (encoder) { return Buffer.from(zstd.compress(encoder.buffer, 3)) },
  async decompress (buffer) { return Buffer.from(zstd.decompress(buffer)) }
})

const kafka = new Kafka({ clientId: 'strand-interop', brokers: [BOOTSTRAP], logLevel: process.env.KAFKAJS_LOG ? logLevel[process.env.KAFKAJS_LOG] : logLevel.NOTHING,
  retry: { retries: 8, initialRetryTime: 100 } })

// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), unsigned.
function murmur2 (data) {
  const m = 0x5bd1e995
  const len = data.length
  let h = (0x9747b28c ^ len) >>> 0
  for (let i = 0; i + 4 <= len; i += 4) {
    let k = (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)) >>> 0
    k = Math.imul(k, m) >>> 0
    k = (k ^ (k >>> 24)) >>> 0
    k = Math.imul(k, m) >>> 0
    h = Math.imul(h, m) >>> 0
    h = (h ^ k) >>> 0
  }
  const base = len & ~3
  switch (len % 4) {
    case 3: h = (h ^ (data[base + 2] << 16)) >>> 0 // falls through
    case 2: h = (h ^ (data[base + 1] << 8)) >>> 0 // falls through
    case 1: h = (h ^ data[base]) >>> 0; h = Math.imul(h, m) >>> 0
  }
  h = (h ^ (h >>> 13)) >>> 0
  h = Math.imul(h, m) >>> 0
  h = (h ^ (h >>> 15)) >>> 0
  return h
}
const javaPartition = (key, n) => (murmur2(Buffer.from(key)) & 0x7fffffff) % n
// Vectors from Kafka's UtilsTest.
for (const [s, want] of [['21', -973932308], ['foobar', -790332482], ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829], ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971], ['abc', 479470107]]) {
  assert.equal(murmur2(Buffer.from(s)) | 0, want, `murmur2 self-check for ${s}`)
}

const unique = prefix => `${prefix}-${crypto.randomBytes(4).toString('hex')}`

async function waitFor (what, timeoutMs, cond) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await cond()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${typeof what === 'function' ? what() : what}`)
    await new Promise(resolve => setTimeout(resolve, 50)) // polling a condition, with a deadline
  }
}

// n records: keyed with headers; every 7th has a null key, every 5th keyed one a null value.
function sample (tag, n) {
  const out = []
  for (let i = 0; i < n; i++) {
    const id = `${tag}-${i}`
    const key = i % 7 === 3 ? null : `key-${i % 23}`
    const value = (i % 5 === 4 && key !== null) ? null : `value-${id}`
    out.push({ id, key, value, headers: { id, n: String(i) } })
  }
  return out
}

// Sends records in one request and returns id -> [partition, offset]: kafkajs reports a base
// offset per partition, and the records of a partition follow it in the order sent.
async function produceAll (producer, topic, recs, opts = {}) {
  const res = await producer.send({ topic, acks: -1, ...opts,
    messages: recs.map(r => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp })) })
  // Which partition each record went to is decided by the partitioner; ask it the same way.
  const part = Partitioners.DefaultPartitioner()
  const next = {}
  for (const m of res) next[m.partition] = BigInt(m.baseOffset)
  const acks = {}
  for (const r of recs) {
    assert.notEqual(r.key, null, 'produceAll needs keyed records to know their partition')
    const p = part({ topic, partitionMetadata: [...Array(opts.partitions || PARTITIONS).keys()].map(i => ({ partitionId: i, leader: 1 })), message: { key: r.key } })
    acks[r.id] = [p, Number(next[p]++)]
  }
  return acks
}

function asRecord (partition, message) {
  const h = {}
  for (const [k, v] of Object.entries(message.headers || {})) h[k] = v === null ? null : v.toString()
  return { id: h.id, key: message.key === null ? null : message.key.toString(),
    value: message.value === null ? null : message.value.toString(), headers: h, partition,
    offset: Number(message.offset), timestamp: Number(message.timestamp) }
}

function verifyConsumed (produced, acks, consumed, what) {
  const seen = new Map()
  for (const c of consumed) {
    if (seen.has(c.id)) assert.fail(`${what}: record ${c.id} consumed twice, at ${seen.get(c.id).partition}/${seen.get(c.id).offset} and ${c.partition}/${c.offset}`)
    seen.set(c.id, c)
  }
  const missing = produced.filter(p => !seen.has(p.id)).map(p => p.id)
  assert.deepEqual(missing, [], `${what}: records never consumed`)
  assert.equal(seen.size, produced.length, `${what}: consumed records that were not produced`)
  for (const p of produced) {
    const c = seen.get(p.id)
    if (acks) assert.deepEqual([c.partition, c.offset], acks[p.id], `${what}: partition/offset of ${p.id}`)
    assert.equal(c.key, p.key, `${what}: key of ${p.id}`)
    assert.equal(c.value, p.value, `${what}: value of ${p.id}`)
    assert.deepEqual(c.headers, p.headers, `${what}: headers of ${p.id}`)
    if (p.key !== null) assert.equal(c.partition, javaPartition(p.key, c.partitions || PARTITIONS), `${what}: partition of key ${p.key} (Java's murmur2 partitioner)`)
  }
  const last = {}
  const order = new Map(produced.map((p, i) => [p.id, i]))
  for (const c of consumed) {
    const prev = last[c.partition]
    if (prev) {
      assert.ok(c.offset > prev.offset, `${what}: partition ${c.partition} went from offset ${prev.offset} to ${c.offset}`)
      assert.ok(order.get(c.id) > order.get(prev.id), `${what}: partition ${c.partition} out of produced order at ${c.id}`)
    }
    last[c.partition] = c
  }
}

// Produce records without relying on produceAll's offset bookkeeping (for null keys).
async function send (producer, topic, recs, opts = {}) {
  await producer.send({ topic, acks: -1, ...opts,
    messages: recs.map(r => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp })) })
}

async function consumeN (consumer, topic, n, opts = {}) {
  const got = []
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  // Each record's offset is committed before the next is handed over: a rebalance (which
  // kafkajs may go through while a new group settles) then resumes right after it instead
  // of at the last commit.
  await consumer.run({ autoCommit: false, eachMessage: async ({ partition, message }) => {
    got.push(asRecord(partition, message))
    await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }])
  } })
  const distinct = () => new Set(got.map(r => r.id)).size
  await waitFor(() => `${n} records (got ${distinct()} distinct)`, 60000, () => distinct() >= n)
  // Nothing more may arrive: wait for one more fetch round to come back empty.
  const before = got.length
  await new Promise(resolve => {
    const off = consumer.on(consumer.events.FETCH, () => { off(); resolve() })
  })
  assert.equal(got.length, before, `extra records arrived after all were consumed: ${got.slice(before).map(r => `${r.id} at ${r.partition}/${r.offset}`).slice(0, 5)}`)
  return got
}

async function createTopic (admin, topic, numPartitions, configEntries = []) {
  const created = await admin.createTopics({ topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }], waitForLeaders: true, timeout: 30000 })
  assert.ok(created, `topic ${topic} was not created`)
  await waitFor(`metadata for ${topic}`, 30000, async () => {
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    const t = md.topics[0]
    return t && t.partitions.length === numPartitions && t.partitions.every(p => p.leader >= 0)
  })
}

function newConsumer (groupId, extra = {}) {
  return kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 20000,
    maxWaitTimeInMs: 200, retry: { retries: 8 }, ...extra })
}

const S = {}
const steps = [
  ['create topic with 4 partitions (admin)', async () => {
    S.admin = kafka.admin()
    await S.admin.connect()
    // Idempotent: kafkajs retries a whole Produce request when one partition in it fails
    // (say NOT_LEADER right after topic creation), which would duplicate the records of the
    // partitions that succeeded.
    S.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner })
    await S.producer.connect()
    S.topic = unique('kjs-main')
    await createTopic(S.admin, S.topic, PARTITIONS)
  }],
  ['produce keyed records with headers, null keys and null values', async () => {
    S.records = sample('a', 300)
    // Keyed and key-less records go in separate requests so that each request's base
    // offsets tell where its records landed.
    S.acks = await produceKnown(S.producer, S.topic, S.records)
  }],
  ['group consumes all exactly once in per-partition order, commits', async () => {
    S.group = unique('kjs-group')
    const c = newConsumer(S.group)
    await c.connect()
    const ends = {}
    try {
      const got = await consumeN(c, S.topic, S.records.length)
      verifyConsumed(S.records, S.acks, got, 'first consumer')
      for (const r of got) ends[r.partition] = Math.max(ends[r.partition] || 0, r.offset + 1)
      await c.commitOffsets(Object.entries(ends).map(([p, o]) => ({ topic: S.topic, partition: Number(p), offset: String(o) })))
    } finally {
      await c.disconnect()
    }
    const [committed] = await S.admin.fetchOffsets({ groupId: S.group, topics: [S.topic] })
    for (const p of committed.partitions) {
      assert.equal(Number(p.offset), ends[p.partition] ?? -1, `committed offset of partition ${p.partition}`)
    }
  }],
  ['restarted consumer resumes at the committed offset', async () => {
    const more = sample('b', 100)
    const acks = await produceKnown(S.producer, S.topic, more)
    const c = newConsumer(S.group)
    await c.connect()
    try {
      verifyConsumed(more, acks, await consumeN(c, S.topic, more.length), 'restarted consumer')
    } finally {
      await c.disconnect()
    }
  }],
  ['two members split partitions, a third joins, nothing lost', testRebalance],
  ['gzip, snappy, lz4, zstd round-trip', async () => {
    for (const [name, type] of [['gzip', CompressionTypes.GZIP], ['snappy', CompressionTypes.Snappy], ['lz4', CompressionTypes.LZ4], ['zstd', CompressionTypes.ZSTD]]) {
      const topic = unique(`kjs-${name}`)
      await createTopic(S.admin, topic, 2)
      const recs = [...Array(200).keys()].map(i => ({ id: `${name}-${i}`, key: `k${i}`, value: `${name} payload ${i} `.repeat(40), headers: { id: `${name}-${i}` } }))
      const acks = await produceAll(S.producer, topic, recs, { compression: type, partitions: 2 })
      const c = newConsumer(unique('kjs-codec'))
      await c.connect()
      try {
        const got = (await consumeN(c, topic, recs.length)).map(r => ({ ...r, partitions: 2 }))
        verifyConsumed(recs, acks, got, `${name} round trip`)
      } finally {
        await c.disconnect()
      }
    }
  }],
  ['1 MiB record round-trips', async () => {
    const topic = unique('kjs-big')
    await createTopic(S.admin, topic, 1, [{ name: 'max.message.bytes', value: String(BIG_TOPIC_MAX_MESSAGE_BYTES) }])
    const value = Buffer.alloc(ONE_MIB)
    for (let i = 0; i < ONE_MIB; i++) value[i] = 0x21 + (i * 7919 + 13) % 90
    await S.producer.send({ topic, acks: -1, messages: [{ key: 'big', value, headers: { id: 'big' } }] })
    const c = newConsumer(unique('kjs-big'), { maxBytesPerPartition: 4 * ONE_MIB, maxBytes: 8 * ONE_MIB })
    await c.connect()
    const got = []
    try {
      await c.subscribe({ topics: [topic], fromBeginning: true })
      await c.run({ autoCommit: false, eachMessage: async ({ message }) => { got.push(message.value) } })
      await waitFor('the 1 MiB record', 60000, () => got.length >= 1)
    } finally {
      await c.disconnect()
    }
    assert.equal(got.length, 1, 'number of 1 MiB records consumed')
    assert.equal(got[0].length, ONE_MIB, 'size of the consumed 1 MiB record')
    assert.ok(got[0].equals(value), 'the consumed 1 MiB record differs from the one produced')
  }],
  ['ListOffsets by timestamp (fetchTopicOffsetsByTimestamp)', async () => {
    const topic = unique('kjs-time')
    await createTopic(S.admin, topic, 1)
    const base = Date.now() - 60000
    await send(S.producer, topic, [...Array(10).keys()].map(i => ({ key: null, value: `t${i}`, headers: {}, timestamp: String(base + i * 1000) })))
    const [lo] = await S.admin.fetchTopicOffsets(topic)
    assert.deepEqual([Number(lo.low), Number(lo.high)], [0, 10], 'earliest and latest offsets')
    for (const [ts, want] of [[base, 0], [base + 4500, 5], [base + 9000, 9], [base - 10000, 0]]) {
      const [o] = await S.admin.fetchTopicOffsetsByTimestamp(topic, ts)
      assert.equal(Number(o.offset), want, `offset for timestamp base+${ts - base}ms`)
    }
    // kafkajs answers "no record at or after this time" with the latest offset.
    const [after] = await S.admin.fetchTopicOffsetsByTimestamp(topic, base + 60000000)
    assert.equal(Number(after.offset), 10, 'offset for a timestamp after the last record')
  }],
  ['idempotent producer writes each record once', async () => {
    const topic = unique('kjs-idem')
    await createTopic(S.admin, topic, PARTITIONS)
    const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner })
    await p.connect()
    const recs = sample('i', 500)
    const acks = await produceKnown(p, topic, recs)
    await p.disconnect()
    const c = newConsumer(unique('kjs-idem'))
    await c.connect()
    try {
      verifyConsumed(recs, acks, await consumeN(c, topic, recs.length), 'idempotent producer')
    } finally {
      await c.disconnect()
    }
  }]
]

// Produces keyed records with offsets computed from the response, and key-less ones one at
// a time (their partition is the partitioner's choice), reading each one's partition back.
async function produceKnown (producer, topic, recs) {
  const keyed = recs.filter(r => r.key !== null)
  const acks = await produceAll(producer, topic, keyed)
  for (const r of recs.filter(r => r.key === null)) {
    const [m] = await producer.send({ topic, acks: -1, messages: [{ key: null, value: r.value, headers: r.headers }] })
    acks[r.id] = [m.partition, Number(m.baseOffset)]
  }
  // Order within a partition: keyed first, then the key-less ones as sent.
  const order = [...keyed, ...recs.filter(r => r.key === null)]
  recs.splice(0, recs.length, ...order)
  return acks
}

async function testRebalance () {
  const topic = unique('kjs-group2')
  await createTopic(S.admin, topic, 6)
  const group = unique('kjs-split')
  const sink = []
  const members = []
  const startMember = async name => {
    const m = { name, owned: new Set(), c: newConsumer(group, { partitionAssigners: undefined }) }
    m.c.on(m.c.events.GROUP_JOIN, e => { m.owned = new Set((e.payload.memberAssignment[topic] || [])) })
    m.c.on(m.c.events.REBALANCING, () => { m.owned = new Set() })
    m.c.on(m.c.events.CRASH, e => { m.error = e.payload.error })
    await m.c.connect()
    await m.c.subscribe({ topics: [topic], fromBeginning: true })
    // Commit each record before the next: a rebalance waits for eachMessage, so the next
    // owner of a partition starts right after the last record this member saw.
    await m.c.run({ autoCommit: false, eachMessage: async ({ partition, message }) => {
      sink.push([name, { ...asRecord(partition, message), partitions: 6 }])
      await m.c.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }])
    } })
    members.push(m)
  }
  const split = () => {
    for (const m of members) assert.ok(!m.error, `member ${m.name} crashed: ${m.error}`)
    const sets = members.map(m => m.owned)
    const union = new Set(sets.flatMap(s => [...s]))
    return sets.every(s => s.size > 0) && union.size === 6 && sets.reduce((a, s) => a + s.size, 0) === 6
  }
  const first = sample('c', 120).filter(r => r.key !== null)
  const acks = await produceAll(S.producer, topic, first, { partitions: 6 })
  try {
    await startMember('m1')
    await startMember('m2')
    await waitFor('two members to split 6 partitions between them', 60000, split)
    await waitFor('the two members to consume the first batch', 60000, () => sink.length >= first.length)
    await startMember('m3')
    const second = sample('d', 120).filter(r => r.key !== null)
    Object.assign(acks, await produceAll(S.producer, topic, second, { partitions: 6 }))
    await waitFor('a rebalance giving each of three members some of the 6 partitions', 60000, split)
    const third = sample('e', 120).filter(r => r.key !== null)
    Object.assign(acks, await produceAll(S.producer, topic, third, { partitions: 6 }))
    const all = [...first, ...second, ...third]
    await waitFor(() => `all ${all.length} records across three members (got ${sink.length})`, 60000, () => split() !== undefined && sink.length >= all.length)
    assert.ok(sink.some(([n]) => n === 'm3'), 'the third member consumed nothing')
    verifyConsumed(all, acks, sink.map(([, r]) => r), 'three-member group')
  } finally {
    for (const m of members) await m.c.disconnect()
  }
}

async function main () {
  await zstd.init()
  let passed = 0
  let failed = 0
  for (const [name, fn] of steps) {
    const start = Date.now()
    try {
      await fn()
      passed++
      console.log(`ok   kafkajs: ${name} (${((Date.now() - start) / 1000).toFixed(1)}s)`)
    } catch (e) {
      failed++
      console.log(`FAIL kafkajs: ${name} (${((Date.now() - start) / 1000).toFixed(1)}s): ${e.stack || e}`)
    }
  }
  for (const h of [S.producer, S.admin]) if (h) await h.disconnect().catch(() => {})
  console.log(`kafkajs: ${passed} passed, ${failed} failed`)
  process.exit(failed ? 1 : 0)
}

main().catch(e => { console.error(e); process.exit(1) })
