"""aiokafka against ringmq: the same checks as kafka_python.py.
Usage: aiokafka_client.py BOOTSTRAP PREFIX"""
import asyncio
import sys
import time

import aiokafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from common import (CODECS, N, base_ts, check_consumed, client, lookups, record, result)

BOOT, PREFIX = sys.argv[1], sys.argv[2]


async def guarded(feature, fn, *args):
    try:
        return await asyncio.wait_for(fn(*args), 90)
    except Exception as e:  # noqa: BLE001 - a client error is the check's result
        return result(feature, False, f"{type(e).__name__}: {e}")


async def create(name, partitions=1):
    a = AIOKafkaAdminClient(bootstrap_servers=BOOT)
    await a.start()
    await a.create_topics([NewTopic(name, partitions, 1)])
    await a.close()


async def admin_check():
    name = f"{PREFIX}-admin"
    a = AIOKafkaAdminClient(bootstrap_servers=BOOT)
    await a.start()
    await a.create_topics([NewTopic(name, 3, 1)])
    described = await a.describe_topics([name])
    parts = [p for t in described for p in t["partitions"]]
    listed = name in await a.list_topics()
    await a.delete_topics([name])
    deadline = time.time() + 10
    while name in await a.list_topics() and time.time() < deadline:
        await asyncio.sleep(0.2)
    gone = name not in await a.list_topics()
    await a.close()
    ok = listed and len(parts) == 3 and gone
    return result("admin.create_delete", ok, f"listed={listed} partitions={len(parts)} deleted={gone}")


async def produce(topic, t0, **cfg):
    p = AIOKafkaProducer(bootstrap_servers=BOOT, acks="all", linger_ms=100, max_batch_size=1 << 20, **cfg)
    await p.start()
    try:
        futures = [await p.send(topic, key=k, value=v, partition=0, timestamp_ms=ts)
                   for k, v, ts in (record(i, t0) for i in range(N))]
        return [(await f).offset for f in futures]
    finally:
        await p.stop()


async def consume(topic):
    c = AIOKafkaConsumer(bootstrap_servers=BOOT, enable_auto_commit=False)
    await c.start()
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    await c.seek_to_beginning(tp)
    got = []
    deadline = time.time() + 15
    while len(got) < N and time.time() < deadline:
        batch = await c.getmany(tp, timeout_ms=1000)
        for m in batch.get(tp, []):
            got.append((m.offset, m.key, m.value, m.timestamp))
    return c, tp, got[:N]


async def codec_check(codec):
    topic, t0 = f"{PREFIX}-{codec}", base_ts()
    await create(topic)
    cfg = {} if codec == "none" else {"compression_type": codec}
    offsets = await produce(topic, t0, **cfg)
    result(f"produce.{codec}", offsets == list(range(N)),
           f"{N} acknowledged at offsets 0..{N - 1}" if offsets == list(range(N)) else f"offsets {offsets[:5]}...")
    c, tp, got = await consume(topic)
    try:
        ok, why = check_consumed(got, t0)
        result(f"consume.{codec}", ok, why)
        bad = []
        for query, want in lookups(t0):
            found = (await c.offsets_for_times({tp: query}))[tp]
            have = None if found is None else (found.offset, found.timestamp)
            if have != want:
                bad.append(f"ts {query - t0:+}: want {want} got {have}")
    finally:
        await c.stop()
    return result(f"offsets_for_time.{codec}", not bad,
                  "; ".join(bad) or "5 lookups exact (inside a batch, first, last, past the end)")


async def member(topic, group):
    c = AIOKafkaConsumer(topic, bootstrap_servers=BOOT, group_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest")
    await c.start()
    return c, await asyncio.wait_for(c.getone(), 20)


async def group_check():
    topic, group, t0 = f"{PREFIX}-group", f"{PREFIX}-g", base_ts()
    await create(topic)
    await produce(topic, t0)
    tp = TopicPartition(topic, 0)
    c, first = await member(topic, group)
    await c.commit({tp: OffsetAndMetadata(50, "")})
    await c.stop()
    c, resumed = await member(topic, group)
    committed = await c.committed(tp)
    await c.stop()
    ok = first.offset == 0 and resumed.offset == 50 and committed == 50
    return result("group.commit_resume", ok,
                  f"first member read {first.offset}, committed 50; next member resumed at "
                  f"{resumed.offset} (committed {committed})")


async def idempotent_check():
    topic, t0 = f"{PREFIX}-idem", base_ts()
    await create(topic)
    offsets = await produce(topic, t0, enable_idempotence=True)
    c, _, got = await consume(topic)
    await c.stop()
    ok, why = check_consumed(got, t0)
    return result("idempotent", ok and offsets == list(range(N)), f"enable_idempotence: {why}")


async def transactions_check():
    started = time.time()
    p = AIOKafkaProducer(bootstrap_servers=BOOT, transactional_id=f"{PREFIX}-tx")
    try:
        await asyncio.wait_for(p.start(), 30)
        return result("transactions.clear_error", False, "start() with a transactional_id succeeded")
    except Exception as e:  # noqa: BLE001
        took = time.time() - started
        return result("transactions.clear_error", took < 10,
                      f"failed after {took:.1f} s: {type(e).__name__}: {e}")
    finally:
        try:
            await asyncio.wait_for(p.stop(), 5)
        except Exception:  # noqa: BLE001
            pass


async def main():
    client("aiokafka", aiokafka.__version__)
    await guarded("admin.create_delete", admin_check)
    for codec in CODECS:
        await guarded(f"offsets_for_time.{codec}", codec_check, codec)
    await guarded("group.commit_resume", group_check)
    await guarded("idempotent", idempotent_check)
    await guarded("transactions.clear_error", transactions_check)


asyncio.run(main())
