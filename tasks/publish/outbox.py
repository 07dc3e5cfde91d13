"""Drain the transactional outbox to Kafka: rows written with the data, published after the commit.

The merge and the quarantine write an `eia_outbox` row in the same transaction as the data, so the
table and the stream cannot disagree; this module is the other half. A drain takes unsent rows in id
order, a chunk at a time under `FOR UPDATE SKIP LOCKED` (concurrent publishers never take the same
row), produces them through the idempotent producer and marks `sent_at` only for rows whose delivery
report succeeded, in the same transaction that holds the lock. Everything else stays pending for the
next drain.

Delivery is at least once: a message whose report was lost (the process died after the broker
acknowledged it) is sent again by the next drain. Consumers deduplicate and order on the key
(series_id) and the `version` header (the row's revision).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer

from tasks.publish.avro import (
    observation_record,
    observation_schema_str,
    quarantine_record,
    quarantine_schema_str,
)
from tasks.publish.producer import (
    KafkaConfigError,
    KafkaSettings,
    QuietLibrdkafkaLog,
    producer_config,
    schema_registry_client,
)
from tasks.store.database import connect
from tasks.store.tables import OUTBOX

logger = logging.getLogger(__name__)

# Grace after message.timeout.ms for librdkafka to fire the expiry reports (it scans about once a second).
_REPORT_GRACE_S: Final = 2.0
_POLL_EVERY: Final = 1000
_QUOTED_VALUE: Final = re.compile(r'value "[^"]*"')


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What one drain did. `pending` counts unsent rows left afterwards (within `topics`, if given)."""

    sent: int
    pending: int
    failed: int  # rows this drain tried but could not deliver or serialize; they stay pending
    by_topic: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    oldest_age_s: float | None  # age of the oldest unsent row; None when nothing is pending


@dataclass(slots=True)
class _Chunk:
    delivered: list[int] = field(default_factory=list)
    by_topic: Counter[str] = field(default_factory=Counter)
    undelivered: int = 0  # broker-side failures: stop draining
    unserializable: int = 0  # bad rows: skip them, keep going
    last_error: str | None = None


class _RegistryUnavailable(Exception):
    """The Schema Registry could not register or look up a schema: nothing can be serialized."""


def _topic_filter(topics: Sequence[str] | None) -> tuple[str, dict[str, Any]]:
    if topics is None:
        return "", {}
    return " AND topic = ANY(%(topics)s)", {"topics": list(topics)}


def _select_sql(where: str) -> str:
    return f"""SELECT id, topic, message_key, payload, version, kind FROM {OUTBOX}
               WHERE sent_at IS NULL AND id > %(after)s{where}
               ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED"""


class _Publisher:
    """One producer and its serializers for the length of a drain."""

    def __init__(self, settings: KafkaSettings, timeout_s: float) -> None:
        registry = schema_registry_client(
            settings.schema_registry_url, auth=settings.schema_registry_security, timeout_s=timeout_s
        )
        self.timeout_s = timeout_s
        self.values: dict[str, tuple[Callable[[Mapping[str, Any]], dict[str, Any]], AvroSerializer]] = {
            "observation": (observation_record, AvroSerializer(registry, observation_schema_str())),
            "quarantine": (quarantine_record, AvroSerializer(registry, quarantine_schema_str())),
        }
        self.keys = StringSerializer("utf_8")
        # librdkafka reports every reconnect attempt; the last few are enough to explain an outage.
        self.broker_errors: deque[KafkaError] = deque(maxlen=16)
        try:
            self.producer = Producer(self._config(settings, timeout_s))
        except KafkaException as exc:
            # librdkafka names the bad property; drop the value it quotes, which may be a secret.
            reason = _QUOTED_VALUE.sub("value", exc.args[0].str() if exc.args else str(exc))
            raise KafkaConfigError(
                f"Kafka producer configuration rejected (Kafka setting 'security'): {reason}"
            ) from None

    def _config(self, settings: KafkaSettings, timeout_s: float) -> dict[str, Any]:
        return {
            **producer_config(settings),
            # Bounds how long a message may wait for the broker, so a drain cannot hang. librdkafka
            # finds expired messages on a scan about once a second: leave that second to the scan.
            "message.timeout.ms": max(500, int(timeout_s * 1000) - 1000),
            "error_cb": self._on_error,
            "logger": QuietLibrdkafkaLog(logger),
        }

    def _on_error(self, err: KafkaError) -> None:
        self.broker_errors.append(err)
        if err.fatal():
            logger.warning("Kafka producer fatal error: %s", err.str())

    def _serialize(self, topic: str, kind: str, payload: Mapping[str, Any]) -> bytes:
        to_record, serializer = self.values[kind]
        record = to_record(payload)  # ValueError for a malformed payload: a bad row
        try:
            value = serializer(record, SerializationContext(topic, MessageField.VALUE))
        except (ValueError, TypeError, OverflowError):
            raise  # fastavro rejected the record: a bad row
        except SchemaRegistryError as exc:
            raise _RegistryUnavailable(f"HTTP {exc.http_status_code}: {exc.error_message}") from None
        except Exception as exc:
            # Only the type: transport errors can quote the registry URL, which may carry credentials.
            raise _RegistryUnavailable(type(exc).__name__) from None
        if value is None:
            raise ValueError("serializer returned no value")
        return value

    def publish(self, rows: Sequence[tuple[Any, ...]]) -> _Chunk:
        chunk = _Chunk()

        def report(row_id: int, topic: str) -> Callable[[KafkaError | None, Message], None]:
            def on_delivery(err: KafkaError | None, _msg: Message) -> None:
                if err is None:
                    chunk.delivered.append(row_id)
                    chunk.by_topic[topic] += 1
                else:
                    chunk.undelivered += 1
                    chunk.last_error = err.str()

            return on_delivery

        for n, (row_id, topic, key, payload, version, kind) in enumerate(rows, 1):
            try:
                value = self._serialize(topic, kind, payload)
            except _RegistryUnavailable as exc:
                chunk.undelivered += len(rows) - n + 1
                chunk.last_error = f"Schema Registry unavailable ({exc})"
                break
            except (ValueError, TypeError, OverflowError) as exc:
                chunk.unserializable += 1
                logger.warning("outbox row %d (%s) cannot be serialized, left pending: %s", row_id, kind, exc)
                continue
            try:
                self._produce(topic, key, value, [("version", str(version)), ("kind", kind)], report(row_id, topic))
            except KafkaException as exc:
                # A fatal producer error (e.g. idempotence state lost): nothing more can be sent now.
                chunk.undelivered += len(rows) - n + 1
                chunk.last_error = str(exc.args[0].str() if exc.args else exc)
                break
            if n % _POLL_EVERY == 0:
                self.producer.poll(0)
        self._await_reports()
        return chunk

    def _produce(
        self,
        topic: str,
        key: str,
        value: bytes,
        headers: list[tuple[str, str | bytes | None]],
        on_delivery: Callable[[KafkaError | None, Message], None],
    ) -> None:
        key_bytes = self.keys(key, SerializationContext(topic, MessageField.KEY))
        while True:
            try:
                self.producer.produce(topic, value, key_bytes, headers=headers, on_delivery=on_delivery)
                return
            except BufferError:
                # The local queue is full (queue.buffering.max.kbytes): let deliveries drain it.
                self.producer.poll(0.05)

    def _await_reports(self) -> None:
        left = self.producer.flush(self.timeout_s + _REPORT_GRACE_S)
        if left:
            # Only queued, never-sent messages can be withdrawn; in-flight ones may yet be acknowledged,
            # and stay pending here (at-least-once: the next drain may send them again).
            self.producer.purge(in_queue=True, in_flight=False, blocking=False)
            self.producer.poll(0)

    def close(self) -> None:
        self.producer.close()

    def broker_hint(self) -> str:
        for err in reversed(self.broker_errors):
            if err.code() == KafkaError._ALL_BROKERS_DOWN:
                return f"; {err.str()}"
        return f"; {self.broker_errors[-1].str()}" if self.broker_errors else ""


def drain_outbox(
    dsn: str,
    settings: KafkaSettings,
    *,
    topics: Sequence[str] | None = None,
    batch_size: int = 5000,
    timeout_s: float = 30.0,
) -> DrainResult:
    """Publishes unsent outbox rows (optionally only those for `topics`); never raises for broker faults.

    `timeout_s` bounds how long each message may wait for the broker (`message.timeout.ms`), so an
    unreachable broker costs about `timeout_s` before the drain returns with the rows still pending.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    where, params = _topic_filter(topics)
    select = _select_sql(where)
    started = time.monotonic()
    sent = undelivered = unserializable = 0
    by_topic: Counter[str] = Counter()
    stop_reason: str | None = None
    publisher = _Publisher(settings, timeout_s)
    try:
        conn = connect(dsn)
        try:
            after = 0
            while stop_reason is None:
                with conn.transaction():
                    rows = conn.execute(select, {**params, "after": after, "limit": batch_size}).fetchall()
                    if not rows:
                        break
                    # Rows left pending in this chunk must not be picked up again by the next one.
                    after = int(rows[-1][0])
                    chunk = publisher.publish(rows)
                    if chunk.delivered:
                        conn.execute(f"UPDATE {OUTBOX} SET sent_at = now() WHERE id = ANY(%s)", (chunk.delivered,))
                sent += len(chunk.delivered)
                by_topic.update(chunk.by_topic)
                undelivered += chunk.undelivered
                unserializable += chunk.unserializable
                if chunk.undelivered:
                    # The broker or registry is failing: later chunks would only wait out the same timeout.
                    stop_reason = chunk.last_error or "delivery failed"
                elif len(rows) < batch_size:
                    break
            pending_row = conn.execute(f"SELECT count(*) FROM {OUTBOX} WHERE sent_at IS NULL{where}", params).fetchone()
            conn.commit()
        finally:
            conn.close()
    finally:
        publisher.close()
    pending = int(pending_row[0]) if pending_row else 0
    if stop_reason is not None:
        logger.warning(
            "Kafka publish incomplete: %d message(s) not delivered to %s within %g s (%s%s); "
            "%d row(s) stay in the outbox for the next drain",
            undelivered,
            settings.bootstrap_servers,
            timeout_s,
            stop_reason,
            publisher.broker_hint(),
            pending,
        )
    logger.info(
        "outbox drain: sent %d, failed %d, pending %d in %.2f s",
        sent,
        undelivered + unserializable,
        pending,
        time.monotonic() - started,
    )
    return DrainResult(sent=sent, pending=pending, failed=undelivered + unserializable, by_topic=dict(by_topic))


def outbox_stats(dsn: str) -> OutboxStats:
    """Pending outbox rows and the oldest one's age, for the publish-lag metrics."""
    # Imported here: every flow that publishes imports this module, and the ORM costs ~25 MB of memory.
    from sqlalchemy import extract
    from sqlmodel import col, func, select

    from tasks.store.models import OutboxMessage
    from tasks.store.sessions import session

    o = OutboxMessage
    oldest_age = extract("epoch", func.now() - func.min(o.created_at))
    with session(dsn) as s:
        pending, age = s.exec(select(func.count(), oldest_age).where(col(o.sent_at).is_(None))).one()
    return OutboxStats(pending=int(pending), oldest_age_s=None if age is None else float(age))
