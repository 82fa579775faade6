#!/usr/bin/env python3
"""kafka-python as a consumer-group member against a running ringmq broker (issue 4).

Usage: kafka_python_group.py --bootstrap 127.0.0.1:PORT --topic NAME --group ID --count N
                             [--timeout-s 90]

Joins --group with a subscribing KafkaConsumer (FindCoordinator, JoinGroup, SyncGroup,
Heartbeat, OffsetFetch all done by kafka-python itself), reads until N distinct records
(partition, offset) arrived, commits synchronously, closes (LeaveGroup) and prints
"OK <count> <partition>:<committed>,..." with the offsets it committed.
With --count 0 it waits for its assignment, polls 3 more seconds and fails if anything
arrives: a group that already committed the end offsets must resume there.
Exits non-zero on any duplicate, timeout or error.
"""

import argparse
import sys
import time

from kafka import KafkaConsumer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--timeout-s", type=float, default=90)
    args = ap.parse_args()

    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        request_timeout_ms=30_000,
    )
    deadline = time.time() + args.timeout_s
    seen = set()
    assigned_at = None
    while True:
        if time.time() > deadline:
            print(f"FAIL: timed out with {len(seen)} of {args.count} records", file=sys.stderr)
            return 1
        batches = consumer.poll(timeout_ms=200)
        for tp, records in batches.items():
            for r in records:
                key = (tp.partition, r.offset)
                if key in seen:
                    print(f"FAIL: duplicate {key}", file=sys.stderr)
                    return 1
                seen.add(key)
        if args.count > 0 and len(seen) >= args.count:
            break
        if args.count == 0:
            if assigned_at is None and consumer.assignment():
                assigned_at = time.time()
            if assigned_at is not None and time.time() - assigned_at > 3:
                break
    if args.count == 0 and seen:
        print(f"FAIL: {len(seen)} records after the group's end offsets", file=sys.stderr)
        return 1
    if len(seen) != args.count:
        print(f"FAIL: {len(seen)} records, expected {args.count}", file=sys.stderr)
        return 1
    consumer.commit()
    parts = sorted(consumer.assignment(), key=lambda tp: tp.partition)
    committed = [f"{tp.partition}:{consumer.committed(tp)}" for tp in parts]
    consumer.close()
    print(f"OK {len(seen)} {','.join(committed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
