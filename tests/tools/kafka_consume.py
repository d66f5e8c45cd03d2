#!/usr/bin/env python3
"""An independent Kafka consumer for tests/kafka.rs: kafka-python, a pure-Python client
(no librdkafka, which qof itself uses). Prints every message of TOPIC, from the first offset
of each partition to its end when started, as `partition<TAB>key<TAB>value` lines.

usage: kafka_consume.py BOOTSTRAP TOPIC
"""
import sys
import time

from kafka import KafkaConsumer, TopicPartition


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        enable_auto_commit=False,
        group_id=None,
    )
    deadline = time.monotonic() + 30
    parts = consumer.partitions_for_topic(topic)
    while not parts:
        if time.monotonic() > deadline:
            sys.exit(f"kafka_consume: no topic {topic}")
        time.sleep(0.2)
        parts = consumer.partitions_for_topic(topic)
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    end = consumer.end_offsets(tps)
    consumer.seek_to_beginning(*tps)
    out = sys.stdout
    while any(consumer.position(tp) < end[tp] for tp in tps):
        if time.monotonic() > deadline:
            sys.exit("kafka_consume: the brokers stopped sending before the end")
        for tp, messages in consumer.poll(timeout_ms=1000).items():
            for m in messages:
                if m.offset >= end[tp]:
                    continue
                key = m.key.decode() if m.key is not None else ""
                out.write(f"{m.partition}\t{key}\t{m.value.decode()}\n")
    consumer.close()


if __name__ == "__main__":
    main()
