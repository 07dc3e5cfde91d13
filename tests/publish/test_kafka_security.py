"""Kafka over SASL_SSL: the `eia-kafka` block's security fields reach librdkafka's configuration under
librdkafka's names, librdkafka accepts them, and a rejected setting is named without its secret value.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from confluent_kafka import Producer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from blocks import EiaKafka
from flows.settings import kafka_settings
from tasks.publish.outbox import drain_outbox
from tasks.publish.producer import RUNBOOK_PRODUCER_SETTINGS, KafkaConfigError, KafkaSettings, producer_config

SASL_PASSWORD = "kafka-Sasl-Passw0rd-never-printed"  # noqa: S105 - a test credential


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kafka-test-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("kafka-ca") / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def sasl_ssl_block(ca: Path, **overrides: str) -> EiaKafka:
    block = EiaKafka(
        bootstrap_servers="broker-1.example.com:9093,broker-2.example.com:9093",
        schema_registry_url="https://registry.example.com",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="eia-ingest",
        sasl_password=SecretStr(SASL_PASSWORD),
        ssl_ca_location=str(ca),
    )
    return block.model_copy(update=overrides)


def test_the_blocks_sasl_ssl_fields_reach_the_producer_configuration(ca_file: Path) -> None:
    settings = kafka_settings(sasl_ssl_block(ca_file))
    assert settings is not None
    config = producer_config(settings)
    assert {k: config[k] for k in settings.security} == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "eia-ingest",
        "sasl.password": SASL_PASSWORD,
        "ssl.ca.location": str(ca_file),
    }
    assert config["bootstrap.servers"] == "broker-1.example.com:9093,broker-2.example.com:9093"
    # The security settings never weaken the runbook's delivery guarantees.
    assert {k: config[k] for k in RUNBOOK_PRODUCER_SETTINGS} == dict(RUNBOOK_PRODUCER_SETTINGS)
    assert config["enable.idempotence"] is True and config["acks"] == "all"


def test_librdkafka_accepts_the_sasl_ssl_configuration(ca_file: Path) -> None:
    settings = kafka_settings(sasl_ssl_block(ca_file))
    assert settings is not None
    producer = Producer({**producer_config(settings), "socket.connection.setup.timeout.ms": 1000})
    try:
        assert producer.flush(0) == 0  # constructed; nothing queued
    finally:
        producer.close()


def test_an_empty_security_protocol_means_plaintext() -> None:
    settings = kafka_settings(EiaKafka(bootstrap_servers="localhost:9092", schema_registry_url="mock://x"))
    assert settings is not None and settings.security == {}
    assert "security.protocol" not in producer_config(settings)


def test_a_security_setting_cannot_override_delivery_guarantees() -> None:
    with pytest.raises(KafkaConfigError, match=r"may not override \['enable.idempotence'\]"):
        KafkaSettings("localhost:9092", "mock://x", security={"enable.idempotence": "false"})


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"sasl_mechanism": "NOT-A-MECHANISM"}, "SASL mechanism"),
        ({"ssl_ca_location": "/nonexistent/ca.pem"}, "ssl.ca.location"),
    ],
)
def test_a_rejected_setting_is_named_and_the_password_is_not_printed(
    db: str, ca_file: Path, overrides: dict[str, str], named: str
) -> None:
    settings = kafka_settings(sasl_ssl_block(ca_file, **overrides))
    assert settings is not None
    with pytest.raises(KafkaConfigError) as rejected:
        drain_outbox(db, settings, timeout_s=1)
    message = str(rejected.value)
    assert "Kafka producer configuration rejected" in message and named in message
    assert SASL_PASSWORD not in message
