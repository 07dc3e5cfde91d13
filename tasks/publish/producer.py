"""Kafka settings and the idempotent producer's configuration, in librdkafka's names.

The runbook lists Java client settings; confluent-kafka speaks librdkafka (runbook errata §8):
`buffer.memory` 67108864 bytes becomes `queue.buffering.max.kbytes` 65536 and
`max.in.flight.requests.per.connection` becomes `max.in.flight`. Idempotence is on, so retries never
duplicate or reorder a series (records are keyed by series id). Snappy is compiled into the bundled
librdkafka and accepted by Tansu (checked by the publish tests), so the runbook's codec stands.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka.schema_registry import SchemaRegistryClient

from tasks.core.redact import register_secret

SERIES_TOPIC: Final = "aurum.ref.eia.series.v1"
BULK_TOPIC: Final = "aurum.ref.eia.bulk.v1"
DLQ_TOPIC: Final = "aurum.ref.eia.series.dlq.v1"
CLIENT_ID: Final = "eia-pipeline"

# The runbook's producer settings (runbook.md "Kafka Producer Settings"), as librdkafka names them.
RUNBOOK_PRODUCER_SETTINGS: Final[Mapping[str, str | int | bool]] = {
    "acks": "all",
    "compression.type": "snappy",
    "batch.size": 32768,
    "linger.ms": 20,
    "queue.buffering.max.kbytes": 67108864 // 1024,
    "max.in.flight": 5,
    "enable.idempotence": True,
}


class KafkaConfigError(ValueError):
    """A Kafka setting is wrong; the message names the setting, never a secret's value."""


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Where to publish. `security` holds librdkafka client settings (security.protocol, sasl.*, ssl.*)."""

    bootstrap_servers: str
    schema_registry_url: str
    series_topic: str = SERIES_TOPIC
    bulk_topic: str = BULK_TOPIC
    dlq_topic: str = DLQ_TOPIC
    # Both hold passwords: kept out of repr() so a logged or raised settings object shows none.
    security: dict[str, str] = field(default_factory=dict, repr=False)
    # Schema Registry client settings such as basic.auth.user.info; secret, never logged.
    schema_registry_security: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise KafkaConfigError("Kafka setting 'bootstrap_servers' is empty")
        if not self.schema_registry_url.startswith(("http://", "https://", "mock://")):
            raise KafkaConfigError("Kafka setting 'schema_registry_url' must be an http(s):// or mock:// URL")
        for name in ("series_topic", "bulk_topic", "dlq_topic"):
            if not str(getattr(self, name)).strip():
                raise KafkaConfigError(f"Kafka setting {name!r} is empty")
        register_secret(self.security.get("sasl.password"))
        register_secret(self.security.get("ssl.key.password"))
        user_info = self.schema_registry_security.get("basic.auth.user.info", "")
        register_secret(user_info.partition(":")[2] or None)
        clashing = sorted(set(self.security) & {"bootstrap.servers", *RUNBOOK_PRODUCER_SETTINGS})
        if clashing:
            raise KafkaConfigError(f"Kafka setting 'security' may not override {clashing}")

    @property
    def topics(self) -> tuple[str, str, str]:
        return (self.series_topic, self.bulk_topic, self.dlq_topic)


def producer_config(settings: KafkaSettings) -> dict[str, Any]:
    """The idempotent producer's librdkafka configuration (contains secrets: never log it)."""
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": CLIENT_ID,
        **RUNBOOK_PRODUCER_SETTINGS,
        **settings.security,
    }


class QuietLibrdkafkaLog:
    """Routes librdkafka's own log lines to DEBUG.

    librdkafka logs every failed reconnect at error level, which would bury the one warning a drain
    writes when the broker is down; the errors still reach callers through error and delivery callbacks.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def log(self, level: int, msg: str, *args: object) -> None:
        self._logger.debug(msg, *args)


_mock_lock = threading.Lock()
_mock_clients: dict[str, SchemaRegistryClient] = {}


def schema_registry_client(
    url: str, *, auth: Mapping[str, str] | None = None, timeout_s: float | None = None
) -> SchemaRegistryClient:
    """A Schema Registry client; `mock://` URLs give an in-memory registry shared per URL in this process.

    confluent-kafka's mock client keeps its schemas per instance, so without the shared instance a
    consumer could not resolve the ids a producer in the same process registered.
    """
    if url.startswith("mock://"):
        with _mock_lock:
            client = _mock_clients.get(url)
            if client is None:
                client = SchemaRegistryClient.new_client({"url": url})
                _mock_clients[url] = client
            return client
    conf: dict[str, Any] = {"url": url, **(auth or {})}
    if timeout_s is not None:
        # An unreachable registry must not outlast the caller's bound (the client retries 3 times).
        conf["timeout"] = max(1.0, timeout_s / 4)
    return SchemaRegistryClient(conf)
