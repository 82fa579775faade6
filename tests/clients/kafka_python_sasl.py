#!/usr/bin/env python3
"""kafka-python over SASL_PLAINTEXT, SSL or SASL_SSL against a running ringmq broker
(issue 14).

Usage: kafka_python_sasl.py --bootstrap HOST:PORT [--mechanism M --user U --password P]
                            [--security-protocol P --cafile CA.pem] --topic T --group G
                            --count N

Without --mechanism (SSL) the records are labelled with the protocol instead.

Produces N records (values "<mechanism>-<i>") with acks=1, then joins group G with a
subscribing KafkaConsumer, reads until it saw all N of its own records, commits, closes and
prints "OK <mechanism> <N>". Exits non-zero on a timeout, a duplicate or any error.
"""

import argparse
import sys
import time

from kafka import KafkaConsumer, KafkaProducer


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--bootstrap", "--topic", "--group"):
        ap.add_argument(flag, required=True)
    for flag in ("--mechanism", "--user", "--password", "--cafile"):
        ap.add_argument(flag)
    ap.add_argument("--security-protocol", default="SASL_PLAINTEXT")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--timeout-s", type=float, default=90)
    a = ap.parse_args()
    sasl = dict(bootstrap_servers=a.bootstrap, security_protocol=a.security_protocol)
    if a.mechanism:
        sasl.update(
            sasl_mechanism=a.mechanism,
            sasl_plain_username=a.user,
            sasl_plain_password=a.password,
        )
    if a.cafile:
        sasl.update(ssl_cafile=a.cafile, ssl_check_hostname=True)
    label = a.mechanism or a.security_protocol
    producer = KafkaProducer(acks=1, **sasl)
    want = {f"{label}-{i}".encode() for i in range(a.count)}
    for v in sorted(want):
        producer.send(a.topic, v)
    producer.flush(timeout=30)
    producer.close()

    consumer = KafkaConsumer(
        a.topic,
        group_id=a.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        **sasl,
    )
    deadline = time.time() + a.timeout_s
    seen = set()
    while not want <= seen:
        if time.time() > deadline:
            print(f"FAIL: saw {len(want & seen)} of {a.count} records", file=sys.stderr)
            return 1
        for _, records in consumer.poll(timeout_ms=200).items():
            for r in records:
                if r.value in want and r.value in seen:
                    print(f"FAIL: duplicate {r.value!r}", file=sys.stderr)
                    return 1
                seen.add(r.value)
    consumer.commit()
    consumer.close()
    print(f"OK {label} {a.count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
