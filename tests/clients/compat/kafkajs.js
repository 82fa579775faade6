// KafkaJS against ringmq: admin, every codec (produce, consume, offsets for a timestamp), a
// consumer group that commits and resumes, the idempotent producer, and a transactional
// producer that must fail at once. KafkaJS ships gzip only; snappy, lz4 and zstd are the
// codec plugins a user adds (kafkajs-snappy, lz4js and zstd-codec: pure JS, no native build).
//
// With RINGMQ_KAFKAJS_LIBRARY=confluent the same checks drive @confluentinc/kafka-javascript
// (librdkafka 2.x inside, built from the npm package by scripts/test) through its
// KafkaJS-compatible API, which differs in a few places handled below: settings are wrapped
// in { kafkaJS }, compression, acks and offsets-reset are producer/consumer settings rather
// than per-call options, and fetchTopicMetadata answers an array.
// Usage: node kafkajs.js BOOTSTRAP PREFIX. Output: see common.py.
'use strict'
const CONFLUENT = process.env.RINGMQ_KAFKAJS_LIBRARY === 'confluent'
const LIBRARY = CONFLUENT ? '@confluentinc/kafka-javascript' : 'kafkajs'
const { Kafka, CompressionTypes, logLevel } = CONFLUENT ? require(LIBRARY).KafkaJS : require(LIBRARY)
const settings = config => CONFLUENT ? { kafkaJS: config } : config

const [BOOT, PREFIX] = process.argv.slice(2)
const N = 200, PROBE = 111, STEP = 10
const CODECS = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy ?? CompressionTypes.SNAPPY, lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD }

function result (feature, ok, detail) {
  const state = typeof ok === 'string' ? ok : (ok ? 'pass' : 'fail')
  console.log(`RESULT\t${feature}\t${state}\t${String(detail).replace(/\s+/g, ' ').slice(0, 300)}`)
}
const baseTs = () => Date.now() - 60000
const record = (i, t0) => ({ key: `key-${i}`, value: `value-${i}`, timestamp: t0 + STEP * i })
function withTimeout (p, ms, what) {
  let timer
  return Promise.race([p, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })]).finally(() => clearTimeout(timer))
}

const kafka = new Kafka(settings({ clientId: 'ringmq-compat', brokers: [BOOT],
  logLevel: logLevel.NOTHING, retry: { retries: 3 } }))

async function create (topic, numPartitions = 1) {
  const admin = kafka.admin()
  await admin.connect()
  // kafka-javascript has no waitForLeaders (ringmq answers CreateTopics once leaders exist).
  const wait = CONFLUENT ? {} : { waitForLeaders: true }
  await admin.createTopics({ topics: [{ topic, numPartitions }], ...wait })
  await admin.disconnect()
}

async function adminCheck () {
  const name = `${PREFIX}-admin`
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: name, numPartitions: 3 }] })
  const md = await admin.fetchTopicMetadata({ topics: [name] })
  const parts = (CONFLUENT ? md : md.topics)[0].partitions.length
  const listed = (await admin.listTopics()).includes(name)
  await admin.deleteTopics({ topics: [name] })
  const gone = !(await admin.listTopics()).includes(name)
  await admin.disconnect()
  result('admin.create_delete', listed && parts === 3 && gone, `listed=${listed} partitions=${parts} deleted=${gone}`)
}

async function produce (topic, t0, compression, opts = {}) {
  const p = kafka.producer(settings(CONFLUENT ? { acks: -1, compression, ...opts } : opts))
  await p.connect()
  const messages = []
  for (let i = 0; i < N; i++) {
    const r = record(i, t0)
    messages.push({ key: r.key, value: r.value, partition: 0, timestamp: String(r.timestamp) })
  }
  const meta = await p.send(CONFLUENT ? { topic, messages } : { topic, acks: -1, compression, messages })
  await p.disconnect()
  return meta
}

async function consume (topic, group, stopAt = N) {
  const reset = { fromBeginning: true, autoCommit: false }
  const c = kafka.consumer(settings(CONFLUENT ? { groupId: group, ...reset } : { groupId: group }))
  await c.connect()
  await c.subscribe(CONFLUENT ? { topic } : { topic, fromBeginning: true })
  const got = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(), 20000)
    c.run({
      ...(CONFLUENT ? {} : { autoCommit: false }),
      eachMessage: async ({ message }) => {
        got.push([Number(message.offset), message.key.toString(), message.value.toString(), Number(message.timestamp)])
        if (got.length >= stopAt) { clearTimeout(timer); resolve() }
      }
    }).catch(reject)
  })
  return { c, got }
}

function checkConsumed (got, t0) {
  if (got.length < N) return [false, `read ${got.length} of ${N} records`]
  for (let i = 0; i < N; i++) {
    const r = record(i, t0)
    const [off, k, v, ts] = got[i]
    if (off !== i || k !== r.key || v !== r.value || ts !== r.timestamp) return [false, `record ${i}: got ${got[i]}`]
  }
  return [true, `${N} records in order, keys, values and timestamps exact`]
}

async function codecCheck (codec) {
  const topic = `${PREFIX}-${codec}`, t0 = baseTs()
  await create(topic)
  const meta = await produce(topic, t0, CODECS[codec])
  const acked = meta.length === 1 && meta[0].errorCode === 0 && meta[0].baseOffset === '0'
  result(`produce.${codec}`, acked, acked ? `${N} acknowledged from offset 0 (one send)` : JSON.stringify(meta))
  const { c, got } = await consume(topic, `${PREFIX}-${codec}-reader`)
  await c.disconnect()
  const [ok, why] = checkConsumed(got, t0)
  result(`consume.${codec}`, ok, why)
  // KafkaJS answers the latest offset where the broker says -1 (nothing at or after).
  const queries = [[t0 + STEP * PROBE - 5, PROBE], [t0 + STEP * PROBE, PROBE], [t0 - 1000, 0],
    [t0 + STEP * (N - 1), N - 1], [t0 + STEP * N, N]]
  const admin = kafka.admin()
  await admin.connect()
  const bad = []
  for (const [ts, want] of queries) {
    const [found] = await admin.fetchTopicOffsetsByTimestamp(topic, ts)
    if (Number(found.offset) !== want) bad.push(`ts ${ts - t0}: want ${want} got ${found.offset}`)
  }
  await admin.disconnect()
  result(`offsets_for_time.${codec}`, bad.length === 0, bad.join('; ') || '5 lookups exact (inside a batch, first, last, past the end)')
}

async function groupCheck () {
  const topic = `${PREFIX}-group`, group = `${PREFIX}-g`, t0 = baseTs()
  await create(topic)
  await produce(topic, t0, CompressionTypes.None)
  const first = await consume(topic, group, 50)
  await first.c.commitOffsets([{ topic, partition: 0, offset: '50' }])
  await first.c.disconnect()
  const next = await consume(topic, group, 1)
  await next.c.disconnect()
  const admin = kafka.admin()
  await admin.connect()
  const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  await admin.disconnect()
  const c = committed.partitions[0].offset
  const ok = first.got[0][0] === 0 && next.got.length > 0 && next.got[0][0] === 50 && c === '50'
  result('group.commit_resume', ok, `first member read ${first.got[0] && first.got[0][0]}, committed 50; next member resumed at ${next.got[0] && next.got[0][0]} (committed ${c})`)
}

async function idempotentCheck () {
  const topic = `${PREFIX}-idem`, t0 = baseTs()
  await create(topic)
  const meta = await produce(topic, t0, CompressionTypes.None, { idempotent: true, maxInFlightRequests: 1 })
  const { c, got } = await consume(topic, `${PREFIX}-idem-reader`)
  await c.disconnect()
  const [ok, why] = checkConsumed(got, t0)
  result('idempotent', ok && meta[0].errorCode === 0, `idempotent: true: ${why}`)
}

async function transactionsCheck () {
  const started = Date.now()
  const p = kafka.producer(settings({ transactionalId: `${PREFIX}-tx`, idempotent: true, maxInFlightRequests: 1 }))
  try {
    await p.connect()
    const tx = await withTimeout(p.transaction(), 30000, 'transaction()')
    await tx.abort()
    result('transactions.clear_error', false, 'transaction() succeeded')
  } catch (e) {
    const took = (Date.now() - started) / 1000
    result('transactions.clear_error', took < 10, `failed after ${took.toFixed(1)} s: ${e.name}: ${e.message}`)
  } finally {
    await p.disconnect().catch(() => {})
  }
}

async function guarded (feature, fn, ...args) {
  try {
    await withTimeout(fn(...args), 90000, feature)
  } catch (e) {
    console.error(e)
    result(feature, false, `${e.name}: ${e.message}`)
  }
}

/** KafkaJS ships gzip only: register the codec plugins a user adds. */
async function kafkajsCodecs () {
  const { CompressionCodecs } = require('kafkajs')
  const SnappyCodec = require('kafkajs-snappy')
  const lz4js = require('lz4js')
  const { ZstdCodec } = require('zstd-codec')
  CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    compress: async encoder => Buffer.from(lz4js.compress(encoder.buffer)),
    decompress: async buffer => Buffer.from(lz4js.decompress(buffer))
  })
  const zstd = await new Promise(resolve => ZstdCodec.run(z => resolve(new z.Simple())))
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    compress: async encoder => Buffer.from(zstd.compress(encoder.buffer)),
    decompress: async buffer => Buffer.from(zstd.decompress(buffer))
  })
}

async function main () {
  const version = require(`${LIBRARY}/package.json`).version
  if (CONFLUENT) {
    const { librdkafkaVersion } = require(LIBRARY)
    console.log(`CLIENT\tkafka-javascript\t${version} (librdkafka ${librdkafkaVersion})`)
  } else {
    await kafkajsCodecs()
    console.log(`CLIENT\tkafkajs\t${version}`)
  }
  await guarded('admin.create_delete', adminCheck)
  for (const codec of Object.keys(CODECS)) await guarded(`offsets_for_time.${codec}`, codecCheck, codec)
  await guarded('group.commit_resume', groupCheck)
  await guarded('idempotent', idempotentCheck)
  await guarded('transactions.clear_error', transactionsCheck)
}

main().then(() => process.exit(0), e => { console.error(e); process.exit(1) })
