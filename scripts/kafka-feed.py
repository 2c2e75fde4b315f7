#!/usr/bin/env python3
"""Produces a file of JSON lines to a Kafka topic, one message per line.

Usage: kafka-feed.py FILE TOPIC [--brokers 127.0.0.1:9092] [--key-field service]

Each line becomes one message, keyed by the value of --key-field (so all
lines of a key land in one partition, in file order; a file with bounded
disorder keeps it within every partition). Waits until every message is
acknowledged and exits non-zero if any delivery failed. Needs
confluent-kafka: scripts/setup.sh --python.
"""

import argparse
import json
import sys

try:
    from confluent_kafka import Producer
except ImportError:  # pragma: no cover
    sys.exit("kafka-feed.py needs confluent-kafka: scripts/setup.sh --python")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("topic")
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--key-field", default="service")
    args = ap.parse_args()

    failed = []
    producer = Producer({
        "bootstrap.servers": args.brokers,
        "enable.idempotence": True,
        "linger.ms": 20,
    })

    def delivered(err, _msg):
        if err is not None:
            failed.append(err)

    sent = 0
    with open(args.file, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            key = None
            if args.key_field:
                key = str(json.loads(line).get(args.key_field, "")).encode()
            while True:
                try:
                    producer.produce(args.topic, value=line, key=key, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.1)
            sent += 1
            if sent % 10000 == 0:
                producer.poll(0)
    left = producer.flush(120)
    if left or failed:
        sys.exit(f"kafka-feed: {len(failed)} deliveries failed, {left} unacknowledged"
                 + (f"; first error: {failed[0]}" if failed else ""))
    print(f"kafka-feed: {sent} messages to {args.topic} on {args.brokers}")


if __name__ == "__main__":
    main()
