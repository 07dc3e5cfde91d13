"""The outbox drain publishes every merged and quarantined row exactly once, and survives a dead broker.

Runs against the real PostgreSQL and the real Tansu broker; only the Schema Registry is the
in-process `mock://` one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg
import pytest

from tasks.normalize.observation import SOURCE_API, SOURCE_BULK, Observation, Rejection
from tasks.publish.consumer import read_topic
from tasks.publish.outbox import drain_outbox, outbox_stats
from tasks.publish.producer import KafkaConfigError, KafkaSettings
from tasks.store.database import transaction
from tasks.store.merge import ensure_partitions, merge_batch
from tasks.store.quarantine import quarantine_rejections
from tasks.store.staging import BatchContext, stage_observations
from tests.support.services import free_port

TENANT = "aurum-test"


@pytest.fixture
def settings(kafka_bootstrap: str) -> KafkaSettings:
    """Fresh topics and a fresh in-memory registry per test: the broker lives for the whole session."""
    tag = uuid.uuid4().hex[:8]
    return KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        schema_registry_url=f"mock://eia-test-{tag}",
        series_topic=f"test.eia.series.{tag}",
        bulk_topic=f"test.eia.bulk.{tag}",
        dlq_topic=f"test.eia.dlq.{tag}",
    )


def _obs(series_id: str, month: int, value: float | None, *, source: str = SOURCE_API) -> Observation:
    return Observation(
        series_id=series_id,
        period=datetime(2024, month, 1, tzinfo=UTC),
        period_end=datetime(2024 + month // 12, month % 12 + 1, 1, tzinfo=UTC),
        raw_period=f"2024-{month:02d}",
        frequency="monthly",
        value=value,
        raw_value=None if value is None else repr(value),
        value_flag=None if value is not None else "NA",
        unit="cents per kilowatt-hour",
        canonical_unit="USD/MWh",
        canonical_currency="USD",
        conversion_factor=10.0,
        canonical_value=None if value is None else value * 10,
        area="CA",
        sector="RES",
        seasonal_adjustment=None,
        description="Average retail price of electricity",
        source=source,
        dataset="electricity/retail-sales",
        metadata={"facets": {"stateid": "CA"}},
    )


def _load(dsn: str, observations: Sequence[Observation], topic: str) -> int:
    """Stages and merges like the loader does; returns how many rows changed (= outbox rows)."""
    ctx = BatchContext.new(TENANT, "run-1", "test")
    with transaction(dsn) as conn:
        stage_observations(conn, ctx, observations)
        ensure_partitions(conn, ctx.batch_id)
        counts = merge_batch(conn, ctx, outbox_topic=topic)
    return counts.inserted + counts.updated


def _unsent(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM eia_outbox WHERE sent_at IS NULL").fetchone()
    assert row is not None
    return int(row[0])


def test_every_merged_row_is_published_once_keyed_by_series_with_its_version(db: str, settings: KafkaSettings) -> None:
    series = ["ELEC.PRICE.CA-RES.M", "ELEC.PRICE.TX-RES.M", "ELEC.PRICE.NY-RES.M"]
    first = [_obs(s, m, 10.0 + m) for s in series for m in range(1, 11)]
    assert _load(db, first, settings.series_topic) == 30
    # EIA revises two values: the same keys again, now at revision 1.
    revised = [_obs(series[0], 1, 99.5), _obs(series[1], 2, None)]
    assert _load(db, [*first[2:5], *revised], settings.series_topic) == 2

    result = drain_outbox(db, settings, timeout_s=10)

    assert (result.sent, result.pending, result.failed) == (32, 0, 0)
    assert result.by_topic == {settings.series_topic: 32}
    messages = read_topic(
        settings.bootstrap_servers, settings.series_topic, schema_registry_url=settings.schema_registry_url
    )
    published = Counter((v["series_id"], v["raw_period"], v["revision"]) for _, v, _ in messages)
    expected = Counter((o.series_id, o.raw_period, 0) for o in first) + Counter(
        (o.series_id, o.raw_period, 1) for o in revised
    )
    assert published == expected
    for key, value, headers in messages:
        assert key == value["series_id"]
        assert headers == {"version": str(value["revision"]), "kind": "observation"}
        assert value["tenant_id"] == TENANT
        assert json.loads(value["metadata"]) == {"facets": {"stateid": "CA"}}
    latest = {(v["series_id"], v["raw_period"], v["revision"]): v for _, v, _ in messages}
    ca_jan = latest[(series[0], "2024-01", 1)]
    assert (ca_jan["value"], ca_jan["raw_value"], ca_jan["period"]) == (
        99.5,
        "99.5",
        datetime(2024, 1, 1, tzinfo=UTC),
    )
    tx_feb = latest[(series[1], "2024-02", 1)]
    assert (tx_feb["value"], tx_feb["value_flag"]) == (None, "NA")
    # Each series arrives in the order it was written (one partition per key, idempotent producer).
    ca_jan_revisions = [v["revision"] for k, v, _ in messages if (k, v["raw_period"]) == (series[0], "2024-01")]
    assert ca_jan_revisions == [0, 1]

    again = drain_outbox(db, settings, timeout_s=10)

    assert (again.sent, again.pending, again.failed, again.by_topic) == (0, 0, 0, {})
    assert (
        len(
            read_topic(
                settings.bootstrap_servers,
                settings.series_topic,
                schema_registry_url=settings.schema_registry_url,
            )
        )
        == 32
    )


def test_quarantined_rows_land_on_the_dlq_with_their_reason(db: str, settings: KafkaSettings) -> None:
    ctx = BatchContext.new(TENANT, "run-2", "test")
    rejections = [
        Rejection(
            "bad_period",
            "month 13 does not exist",
            "ELEC.PRICE.CA-RES.M",
            "2024-13",
            "12.5",
            {"period": "2024-13", "value": "12.5"},
        ),
        Rejection("duplicate_in_response", "second copy of 2024-01", None, "2024-01", None, None),
    ]
    with transaction(db) as conn:
        assert quarantine_rejections(
            conn,
            ctx,
            rejections,
            source=SOURCE_API,
            dataset="electricity/retail-sales",
            dlq_topic=settings.dlq_topic,
        ) == {"bad_period": 1, "duplicate_in_response": 1}

    result = drain_outbox(db, settings, timeout_s=10)

    assert (result.sent, result.pending, result.by_topic) == (2, 0, {settings.dlq_topic: 2})
    messages = read_topic(
        settings.bootstrap_servers, settings.dlq_topic, schema_registry_url=settings.schema_registry_url
    )
    by_reason = {v["reason"]: (k, v, h) for k, v, h in messages}
    assert sorted(by_reason) == ["bad_period", "duplicate_in_response"]
    key, value, headers = by_reason["bad_period"]
    assert (key, value["series_id"], value["raw_period"], value["raw_value"]) == (
        "ELEC.PRICE.CA-RES.M",
        "ELEC.PRICE.CA-RES.M",
        "2024-13",
        "12.5",
    )
    assert json.loads(value["payload"]) == {"period": "2024-13", "value": "12.5"}
    assert (value["detail"], value["ingest_batch_id"], value["tenant_id"]) == (
        "month 13 does not exist",
        ctx.batch_id,
        TENANT,
    )
    assert headers == {"version": "0", "kind": "quarantine"}
    key, value, _ = by_reason["duplicate_in_response"]
    assert (key, value["series_id"], value["payload"]) == ("", None, None)


def test_unreachable_broker_leaves_every_row_pending_then_a_later_drain_delivers(
    db: str, settings: KafkaSettings, caplog: pytest.LogCaptureFixture
) -> None:
    rows = _load(db, [_obs("ELEC.PRICE.CA-RES.M", m, float(m)) for m in range(1, 13)], settings.series_topic)
    dead = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        schema_registry_url=settings.schema_registry_url,
        series_topic=settings.series_topic,
    )

    started = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="tasks.publish"):
        down = drain_outbox(db, dead, timeout_s=1.0)
    elapsed = time.monotonic() - started

    assert (down.sent, down.pending, down.failed, down.by_topic) == (0, rows, rows, {})
    assert _unsent(db) == rows
    assert elapsed < 5, f"drain against a dead broker took {elapsed:.1f} s"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].exc_info is None
    assert "not delivered" in warnings[0].getMessage()
    assert "stay in the outbox" in warnings[0].getMessage()

    up = drain_outbox(db, settings, timeout_s=10)

    assert (up.sent, up.pending, up.failed) == (rows, 0, 0)
    assert _unsent(db) == 0
    messages = read_topic(
        settings.bootstrap_servers, settings.series_topic, schema_registry_url=settings.schema_registry_url
    )
    assert sorted(v["raw_period"] for _, v, _ in messages) == [f"2024-{m:02d}" for m in range(1, 13)]


def test_topics_filter_publishes_only_the_named_topics(db: str, settings: KafkaSettings) -> None:
    api = _load(db, [_obs("A.M", m, 1.0) for m in range(1, 4)], settings.series_topic)
    bulk = _load(db, [_obs("B.M", m, 2.0, source=SOURCE_BULK) for m in range(1, 6)], settings.bulk_topic)

    only_bulk = drain_outbox(db, settings, topics=[settings.bulk_topic], timeout_s=10)

    assert (only_bulk.sent, only_bulk.pending, only_bulk.by_topic) == (bulk, 0, {settings.bulk_topic: bulk})
    assert _unsent(db) == api
    rest = drain_outbox(db, settings, timeout_s=10)
    assert (rest.sent, rest.by_topic) == (api, {settings.series_topic: api})


def test_concurrent_drains_never_send_the_same_row(db: str, settings: KafkaSettings) -> None:
    total = _load(db, [_obs(f"S{i}.M", m, float(i)) for i in range(50) for m in range(1, 13)], settings.series_topic)
    results = []

    def drain() -> None:
        results.append(drain_outbox(db, settings, batch_size=100, timeout_s=10))

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(r.sent for r in results) == total
    assert _unsent(db) == 0
    messages = read_topic(
        settings.bootstrap_servers, settings.series_topic, schema_registry_url=settings.schema_registry_url
    )
    assert len(messages) == total
    assert len({(v["series_id"], v["raw_period"]) for _, v, _ in messages}) == total


def test_outbox_stats_report_pending_rows_and_the_oldest_age(db: str, settings: KafkaSettings) -> None:
    assert outbox_stats(db) == outbox_stats(db).__class__(pending=0, oldest_age_s=None)
    rows = _load(db, [_obs("A.M", m, 1.0) for m in range(1, 4)], settings.series_topic)
    with psycopg.connect(db) as conn:
        conn.execute("UPDATE eia_outbox SET created_at = now() - interval '90 seconds'")

    stats = outbox_stats(db)

    assert stats.pending == rows
    assert stats.oldest_age_s is not None and 90 <= stats.oldest_age_s < 120
    drain_outbox(db, settings, timeout_s=10)
    assert outbox_stats(db).pending == 0


def test_a_row_that_cannot_be_serialized_stays_pending_and_the_rest_are_sent(
    db: str, settings: KafkaSettings, caplog: pytest.LogCaptureFixture
) -> None:
    good = _load(db, [_obs("A.M", m, 1.0) for m in range(1, 4)], settings.series_topic)
    with psycopg.connect(db) as conn:
        conn.execute(
            "INSERT INTO eia_outbox (topic, message_key, payload, kind) VALUES (%s, 'A.M', '{}', 'observation')",
            (settings.series_topic,),
        )

    with caplog.at_level(logging.WARNING, logger="tasks.publish"):
        result = drain_outbox(db, settings, timeout_s=10)

    assert (result.sent, result.failed, result.pending) == (good, 1, 1)
    assert [r.getMessage() for r in caplog.records] == [
        "outbox row 4 (observation) cannot be serialized, left pending: "
        "SeriesObservation payload lacks required field 'tenant_id'"
    ]


def test_a_rejected_client_setting_fails_fast_without_echoing_its_value(db: str, settings: KafkaSettings) -> None:
    bad = KafkaSettings(
        settings.bootstrap_servers, settings.schema_registry_url, security={"security.protocol": "s3cret-ish"}
    )
    with pytest.raises(KafkaConfigError, match=r"security\.protocol") as raised:
        drain_outbox(db, bad, timeout_s=1)
    assert "s3cret-ish" not in str(raised.value)
