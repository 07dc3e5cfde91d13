"""Read a whole topic back, decoded: for tests and for `eia` commands that show what was published.

It assigns every partition from the beginning instead of subscribing: a consumer-group join costs
about 20 s on Tansu, and a reader that commits nothing needs no group.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tasks.publish.producer import CLIENT_ID, schema_registry_client

# A topic counts as read once every partition reported its end, or nothing arrived for this long.
IDLE_S = 1.0


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    schema_registry_url: str,
    timeout_s: float = 10.0,
    security: Mapping[str, str] | None = None,
    schema_registry_security: Mapping[str, str] | None = None,
) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """Every message of `topic` as (key, decoded value, headers), in partition order.

    Returns [] for a topic that does not exist. Stops when every partition reached its end, after
    `IDLE_S` without a message, or at `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": f"{CLIENT_ID}-reader",
            "group.id": f"{CLIENT_ID}-reader-{uuid.uuid4().hex[:8]}",  # required by the client, never joined
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            # A catch-up reader, not a tail: don't let the broker hold an empty fetch for 500 ms.
            "fetch.wait.max.ms": 50,
            **(security or {}),
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=max(0.1, deadline - time.monotonic()))
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return []
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(found.partitions)])
        deserializer = AvroDeserializer(
            schema_registry_client(schema_registry_url, auth=schema_registry_security, timeout_s=timeout_s)
        )
        context = SerializationContext(topic, MessageField.VALUE)
        out: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        at_end: set[int] = set()
        last_seen = time.monotonic()
        while len(at_end) < len(found.partitions):
            now = time.monotonic()
            if now >= deadline or now - last_seen >= IDLE_S:
                break
            msg = consumer.poll(min(0.2, deadline - now))
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition() or 0)
                    continue
                raise RuntimeError(f"reading {topic}: {err.str()}")
            last_seen = time.monotonic()
            at_end.discard(msg.partition() or 0)
            raw_key = msg.key()
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key or "")
            raw_headers = msg.headers() or []
            pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
            headers = {k: v.decode() if isinstance(v, bytes) else str(v or "") for k, v in pairs}
            value = deserializer(msg.value(), context)
            out.append((key, value, headers))
        return out
    finally:
        consumer.close()
