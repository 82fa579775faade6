#!/usr/bin/env python3
"""kafka-python against a ringmq cluster, bootstrapped with ONE node (issue 11).

Usage: cluster_roundtrip.py --bootstrap IP:PORT --topic NAME --partitions P --count N
                            [--timeout-s 40]

Produces N records to every partition of the topic (explicit partition, acks=all, idempotent),
key `python-k-P-I`, value `python-P-I`; the client must find each partition's leader itself
(from Metadata) and send there, as any other node answers NOT_LEADER_OR_FOLLOWER. Prints one
`ACK P OFFSET KEY VALUE` line per acknowledged record. Then reads every partition from the
beginning to the end offsets it lists (assign + seek_to_beginning, no group) and prints one
`GOT P OFFSET KEY VALUE` line per record; the test compares both with what every client
wrote. Exits non-zero on any error, duplicate or timeout.
"""

import argparse
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def produce(args):
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=10_000,
    )
    sent = []
    for p in range(args.partitions):
        for i in range(args.count):
            key, value = f"python-k-{p}-{i}", f"python-{p}-{i}"
            f = producer.send(args.topic, key=key.encode(), value=value.encode(), partition=p)
            sent.append((p, key, value, f))
    producer.flush(timeout=args.timeout_s)
    for p, key, value, f in sent:
        md = f.get(timeout=args.timeout_s)
        if md.partition != p:
            fail(f"{key} acknowledged on partition {md.partition}")
        print(f"ACK {p} {md.offset} {key} {value}")
    producer.close(timeout=10)


def consume(args, deadline):
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    parts = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    ends = consumer.end_offsets(parts)
    seen = set()
    while any(consumer.position(tp) < ends[tp] for tp in parts):
        if time.monotonic() > deadline:
            fail(f"read {len(seen)} records before the deadline; ends {ends}")
        for tp, records in consumer.poll(timeout_ms=200).items():
            for r in records:
                if (tp.partition, r.offset) in seen:
                    fail(f"offset {tp.partition}/{r.offset} twice")
                seen.add((tp.partition, r.offset))
                print(f"GOT {tp.partition} {r.offset} {r.key.decode()} {r.value.decode()}")
    consumer.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--timeout-s", type=float, default=40)
    args = ap.parse_args()
    deadline = time.monotonic() + args.timeout_s
    produce(args)
    consume(args, deadline)
    print("OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
