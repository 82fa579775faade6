// KafkaJS against a ringmq cluster, bootstrapped with ONE node (issue 11).
//
// Usage: node cluster_roundtrip.js BOOTSTRAP TOPIC PARTITIONS COUNT [TIMEOUT_S]
//
// Produces COUNT records to every partition (explicit partition, acks=-1, idempotent), key
// `kafkajs-k-P-I`, value `kafkajs-P-I`; KafkaJS must find each partition's leader from
// Metadata, as any other node answers NOT_LEADER_OR_FOLLOWER. Prints `ACK P OFFSET KEY VALUE`
// per acknowledged record. Then a consumer group of its own (group `TOPIC-kafkajs`, so
// FindCoordinator, JoinGroup, SyncGroup and Fetch all go to whichever node serves them) reads
// every partition from the beginning to the end offsets the admin client lists, printing
// `GOT P OFFSET KEY VALUE` per record. Exits non-zero on any error, duplicate or timeout.
'use strict'
const { Kafka, logLevel } = require('kafkajs')

const [BOOT, TOPIC, PARTS, COUNT, TIMEOUT_S] = process.argv.slice(2)
const PARTITIONS = Number(PARTS)
const N = Number(COUNT)
const deadline = Date.now() + 1000 * Number(TIMEOUT_S || 40)
const kafka = new Kafka({ clientId: 'ringmq-cluster', brokers: [BOOT], logLevel: logLevel.ERROR })

function fail (msg) {
  console.error(`FAIL: ${msg}`)
  process.exit(1)
}

async function produce () {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (let p = 0; p < PARTITIONS; p++) {
    const messages = []
    for (let i = 0; i < N; i++) messages.push({ partition: p, key: `kafkajs-k-${p}-${i}`, value: `kafkajs-${p}-${i}` })
    const [res] = await producer.send({ topic: TOPIC, acks: -1, messages })
    if (res.partition !== p || res.errorCode !== 0) fail(`partition ${p}: ${JSON.stringify(res)}`)
    messages.forEach((m, i) => console.log(`ACK ${p} ${BigInt(res.baseOffset) + BigInt(i)} ${m.key} ${m.value}`))
  }
  await producer.disconnect()
}

async function endOffsets () {
  const admin = kafka.admin()
  await admin.connect()
  const offsets = await admin.fetchTopicOffsets(TOPIC)
  await admin.disconnect()
  const ends = new Map(offsets.map(o => [o.partition, BigInt(o.high)]))
  if (ends.size !== PARTITIONS) fail(`end offsets of ${ends.size} partitions`)
  return ends
}

async function consume (ends) {
  const consumer = kafka.consumer({ groupId: `${TOPIC}-kafkajs`, maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true })
  const next = new Map([...ends.keys()].map(p => [p, 0n]))
  const seen = new Set()
  let done
  const finished = new Promise(resolve => { done = resolve })
  const check = () => { if ([...ends].every(([p, end]) => next.get(p) >= end)) done() }
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const at = `${partition}/${message.offset}`
      if (seen.has(at)) fail(`offset ${at} twice`)
      seen.add(at)
      console.log(`GOT ${partition} ${message.offset} ${message.key} ${message.value}`)
      next.set(partition, BigInt(message.offset) + 1n)
      check()
    }
  })
  check()
  const timer = setInterval(() => { if (Date.now() > deadline) fail(`read ${seen.size} records before the deadline`) }, 200)
  await finished
  clearInterval(timer)
  await consumer.disconnect()
}

(async () => {
  await produce()
  await consume(await endOffsets())
  console.log('OK')
  process.exit(0)
})().catch(e => fail(e.stack || e))
