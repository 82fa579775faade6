#!/usr/bin/env python3
"""kafka-python round trip against a running ringmq broker (issue 2: an independent client).

Usage: kafka_python_roundtrip.py --bootstrap 127.0.0.1:PORT --topic NAME [--partitions 3]
                                 [--count 1000]

The topic must exist with --partitions partitions. Produces --count keyed records with a header
and an explicit timestamp through an idempotent acks=all KafkaProducer (kafka-python negotiates
versions through ApiVersions by itself), then reads the partitions from the beginning with a
group-less KafkaConsumer (assign + seek_to_beginning) and checks that every record arrives
exactly once, at the offset the producer was told, with key, value, header and timestamp
intact, in order within each partition. Exits 0 and prints "OK" only if all of that holds.
"""

import argparse
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

# Close to now: old timestamps would fall to time-based retention.
BASE_TIMESTAMP_MS = (int(time.time()) - 60) * 1000


def record(i):
    return (
        f"k-{i}".encode(),
        f"value-{i}-".encode() * 4,
        [("idx", str(i).encode())],
        BASE_TIMESTAMP_MS + i,
    )


def produce(args):
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=30_000,
    )
    futures = []
    for i in range(args.count):
        key, value, headers, ts = record(i)
        futures.append(
            producer.send(
                args.topic,
                key=key,
                value=value,
                headers=headers,
                partition=i % args.partitions,
                timestamp_ms=ts,
            )
        )
    producer.flush(timeout=60)
    acked = {}
    for i, f in enumerate(futures):
        md = f.get(timeout=60)
        acked[i] = (md.partition, md.offset)
    producer.close(timeout=10)
    return acked


def consume(args, acked):
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=30_000,
    )
    partitions = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen = {}
    last = {}
    deadline = time.monotonic() + 120
    while len(seen) < args.count:
        if time.monotonic() > deadline:
            fail(f"consumed {len(seen)} of {args.count} records before the deadline")
        for tp, messages in consumer.poll(timeout_ms=500).items():
            for m in messages:
                i = check(m)
                if i in seen:
                    fail(f"record {i} consumed twice: {seen[i]} and {(m.partition, m.offset)}")
                seen[i] = (m.partition, m.offset)
                if acked.get(i) != seen[i]:
                    fail(f"record {i} at {seen[i]}, producer was told {acked.get(i)}")
                prev = last.get(m.partition)
                if prev is not None and not (m.offset > prev[0] and i > prev[1]):
                    fail(f"partition {m.partition}: record {i}@{m.offset} after {prev}")
                last[m.partition] = (m.offset, i)
    extra = consumer.poll(timeout_ms=1000)
    if any(extra.values()):
        fail(f"records beyond the {args.count} produced: {extra}")
    consumer.close()


def check(m):
    headers = list(m.headers or [])
    if len(headers) != 1 or headers[0][0] != "idx":
        fail(f"bad headers {headers} at {m.partition}/{m.offset}")
    i = int(headers[0][1].decode())
    key, value, _, ts = record(i)
    if (m.key, m.value, m.timestamp) != (key, value, ts):
        fail(f"record {i} differs: {(m.key, m.value[:40] if m.value else None, m.timestamp)}")
    return i


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    acked = produce(args)
    if len(acked) != args.count:
        fail(f"{len(acked)} of {args.count} acknowledged")
    consume(args, acked)
    print(f"OK: kafka-python round trip of {args.count} records on {args.topic}")


if __name__ == "__main__":
    main()
