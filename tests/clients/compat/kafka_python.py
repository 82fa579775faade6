"""kafka-python against ringmq: admin, every codec (produce, consume, offsets for a timestamp),
a consumer group that commits and resumes, the idempotent producer, and a transactional
producer that must fail at once. Usage: kafka_python.py BOOTSTRAP PREFIX"""
import sys
import time

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from common import (CODECS, N, base_ts, check_consumed, client, guarded, lookups, record,
                    result)

BOOT, PREFIX = sys.argv[1], sys.argv[2]


def admin():
    return KafkaAdminClient(bootstrap_servers=BOOT, request_timeout_ms=10_000)


def create(name, partitions=1):
    a = admin()
    a.create_topics([NewTopic(name, partitions, 1)])
    a.close()


def admin_check():
    name = f"{PREFIX}-admin"
    a = admin()
    a.create_topics([NewTopic(name, 3, 1)])
    parts = [p for t in a.describe_topics([name]) for p in t["partitions"]]
    listed = name in a.list_topics()
    a.delete_topics([name])
    deadline = time.time() + 10
    while name in a.list_topics() and time.time() < deadline:
        time.sleep(0.2)
    gone = name not in a.list_topics()
    a.close()
    ok = listed and len(parts) == 3 and gone
    return result("admin.create_delete", ok, f"listed={listed} partitions={len(parts)} deleted={gone}")


def produce(topic, t0, **cfg):
    p = KafkaProducer(bootstrap_servers=BOOT, acks="all", linger_ms=100, batch_size=1 << 20, **cfg)
    futures = [p.send(topic, key=k, value=v, partition=0, timestamp_ms=ts)
               for k, v, ts in (record(i, t0) for i in range(N))]
    p.flush(30)
    offsets = [f.get(30).offset for f in futures]
    p.close()
    return offsets


def consume(topic):
    c = KafkaConsumer(bootstrap_servers=BOOT, enable_auto_commit=False, consumer_timeout_ms=15_000)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = []
    for m in c:
        got.append((m.offset, m.key, m.value, m.timestamp))
        if len(got) >= N:
            break
    return c, tp, got


def codec_check(codec):
    topic, t0 = f"{PREFIX}-{codec}", base_ts()
    create(topic)
    cfg = {} if codec == "none" else {"compression_type": codec}
    offsets = produce(topic, t0, **cfg)
    result(f"produce.{codec}", offsets == list(range(N)),
           f"{N} acknowledged at offsets 0..{N - 1}" if offsets == list(range(N)) else f"offsets {offsets[:5]}...")
    c, tp, got = consume(topic)
    ok, why = check_consumed(got, t0)
    result(f"consume.{codec}", ok, why)
    bad = []
    for query, want in lookups(t0):
        found = c.offsets_for_times({tp: query})[tp]
        have = None if found is None else (found.offset, found.timestamp)
        if have != want:
            bad.append(f"ts {query - t0:+}: want {want} got {have}")
    c.close()
    return result(f"offsets_for_time.{codec}", not bad,
                  "; ".join(bad) or "5 lookups exact (inside a batch, first, last, past the end)")


def group_check():
    topic, group, t0 = f"{PREFIX}-group", f"{PREFIX}-g", base_ts()
    create(topic)
    produce(topic, t0)
    tp = TopicPartition(topic, 0)

    def member():
        c = KafkaConsumer(topic, bootstrap_servers=BOOT, group_id=group, enable_auto_commit=False,
                          auto_offset_reset="earliest", consumer_timeout_ms=15_000)
        return c, next(iter(c))

    c, first = member()
    c.commit({tp: OffsetAndMetadata(50, "", -1)})
    c.close()
    c, resumed = member()
    committed = c.committed(tp)
    c.close()
    ok = first.offset == 0 and resumed.offset == 50 and committed == 50
    return result("group.commit_resume", ok,
                  f"first member read {first.offset}, committed 50; next member resumed at "
                  f"{resumed.offset} (committed {committed})")


def idempotent_check():
    topic, t0 = f"{PREFIX}-idem", base_ts()
    create(topic)
    offsets = produce(topic, t0, enable_idempotence=True)
    c, _, got = consume(topic)
    c.close()
    ok, why = check_consumed(got, t0)
    ok = ok and offsets == list(range(N))
    return result("idempotent", ok, f"enable_idempotence: {why}")


def transactions_check():
    started = time.time()
    try:
        p = KafkaProducer(bootstrap_servers=BOOT, transactional_id=f"{PREFIX}-tx", max_block_ms=30_000)
        p.init_transactions()
        return result("transactions.clear_error", False, "init_transactions succeeded")
    except Exception as e:  # noqa: BLE001
        took = time.time() - started
        return result("transactions.clear_error", took < 10,
                      f"failed after {took:.1f} s: {type(e).__name__}: {e}")


def main():
    client("kafka-python", kafka.__version__)
    guarded("admin.create_delete", admin_check)
    for codec in CODECS:
        guarded(f"offsets_for_time.{codec}", codec_check, codec)
    guarded("group.commit_resume", group_check)
    guarded("idempotent", idempotent_check)
    guarded("transactions.clear_error", transactions_check)


main()
