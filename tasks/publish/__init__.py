"""The Kafka adapter: Avro records, the transactional outbox, the idempotent producer.

What it does: the Avro schemas derive from the observation record and the quarantine table (`avro`);
`drain_outbox` publishes the rows the merge and the quarantine wrote to `eia_outbox` in their own
transactions, keyed by series id, with confluent-kafka's Avro serializer and Schema Registry client,
and marks them sent (`outbox`); `KafkaSettings` and `producer_config` map the `eia-kafka` block to
librdkafka's settings (`producer`); `read_topic` reads a topic back (the demo and tests).

What it never does: decide what is published (the merge and the quarantine do, transactionally), or
lose a message when the broker is down: undelivered rows stay in the outbox for the next drain.
"""

from tasks.publish.consumer import read_topic
from tasks.publish.outbox import DrainResult, OutboxStats, drain_outbox, outbox_stats
from tasks.publish.producer import KafkaConfigError, KafkaSettings, producer_config

__all__ = [
    "DrainResult",
    "KafkaConfigError",
    "KafkaSettings",
    "OutboxStats",
    "drain_outbox",
    "outbox_stats",
    "producer_config",
    "read_topic",
]
