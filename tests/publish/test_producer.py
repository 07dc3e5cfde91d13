"""The producer configuration is the runbook's, in librdkafka's names, and settings fail fast by name."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from tasks.publish.producer import KafkaConfigError, KafkaSettings, producer_config, schema_registry_client


def test_runbook_settings_map_to_librdkafka_names_with_security_merged() -> None:
    settings = KafkaSettings(
        "kafka-prod:9092",
        "http://schema-registry-prod:8081",
        security={"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"},
    )

    config = producer_config(settings)

    assert config == {
        "bootstrap.servers": "kafka-prod:9092",
        "client.id": "eia-pipeline",
        "acks": "all",
        "compression.type": "snappy",
        "batch.size": 32768,
        "linger.ms": 20,
        "queue.buffering.max.kbytes": 65536,  # the runbook's buffer.memory=67108864 bytes
        "max.in.flight": 5,
        "enable.idempotence": True,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
    }


def test_librdkafka_accepts_the_configuration_including_snappy() -> None:
    Producer(producer_config(KafkaSettings("127.0.0.1:9", "mock://accepts"))).close()


def test_default_topics_are_the_runbooks() -> None:
    settings = KafkaSettings("kafka:9092", "mock://defaults")
    assert settings.topics == (
        "aurum.ref.eia.series.v1",
        "aurum.ref.eia.bulk.v1",
        "aurum.ref.eia.series.dlq.v1",
    )


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"bootstrap_servers": " "}, "bootstrap_servers"),
        ({"schema_registry_url": "schema-registry:8081"}, "schema_registry_url"),
        ({"dlq_topic": ""}, "dlq_topic"),
        ({"security": {"acks": "1"}}, "security"),
    ],
)
def test_bad_settings_fail_naming_the_setting(kwargs: dict[str, object], named: str) -> None:
    base: dict[str, object] = {"bootstrap_servers": "kafka:9092", "schema_registry_url": "mock://bad"}
    with pytest.raises(KafkaConfigError, match=named):
        KafkaSettings(**{**base, **kwargs})  # type: ignore[arg-type]


def test_mock_registry_is_shared_per_url_within_the_process() -> None:
    # confluent-kafka's mock keeps schemas per instance; producer and reader must see the same one.
    assert schema_registry_client("mock://shared-a") is schema_registry_client("mock://shared-a")
    assert schema_registry_client("mock://shared-a") is not schema_registry_client("mock://shared-b")
