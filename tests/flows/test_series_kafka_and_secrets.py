"""The series flow publishes through the outbox to a real broker, and never leaks the API key."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from flows.series import ingest_eia_series_timescale, run_result
from tasks.publish.consumer import read_topic
from tasks.standin.data import DATE_FORMATS, synthetic_route_series
from tests.flows.conftest import API_KEY, Setup
from tests.flows.series_data import SEVEN, SeriesSpec, add_series

pytestmark = pytest.mark.slow

SERIES_TOPIC = "aurum.ref.eia.series.v1"
DLQ_TOPIC = "aurum.ref.eia.series.dlq.v1"
# One in-memory Schema Registry for the session: the broker keeps every test's messages.
REGISTRY = "mock://eia-tests"


def _with_bad_rows(setup: Setup) -> tuple[SeriesSpec, int, int]:
    spec = SeriesSpec(
        "retail-res",
        "electricity/retail-sales",
        "monthly",
        "price",
        "cents per kilowatt-hour",
        {"stateid": "US", "sectorid": "RES"},
        12,
        "2025-01",
        base=15.0,
    )
    rows = synthetic_route_series(
        spec.route,
        spec.frequency,
        n_points=12,
        facets=spec.facets,
        column="price",
        unit=spec.unit,
        start="2025-01",
        value_fn=spec.value,
    )
    rows.append(dict(rows[0], period="2025-02-30"))  # an impossible period → quarantine
    setup.server.dataset.add_route_rows(spec.route, spec.frequency, DATE_FORMATS["monthly"], rows)
    return spec, 12, 1


async def test_every_merged_row_is_on_the_series_topic_and_quarantined_rows_on_the_dlq(
    setup: Setup, kafka_bootstrap: str
) -> None:
    registry = REGISTRY
    await setup.configure(kafka=(kafka_bootstrap, registry))
    spec, good, bad = _with_bad_rows(setup)
    state = await ingest_eia_series_timescale(catalog_path=setup.catalog([spec.entry()]), return_state=True)
    result = run_result(state)
    assert result is not None and state.is_completed(), state.message

    messages = await asyncio.to_thread(read_topic, kafka_bootstrap, SERIES_TOPIC, schema_registry_url=registry)
    dlq = await asyncio.to_thread(read_topic, kafka_bootstrap, DLQ_TOPIC, schema_registry_url=registry)
    with psycopg.connect(setup.dsn) as conn:
        table = {(r[0], r[1]) for r in conn.execute("SELECT series_id, raw_period FROM eia_series_timeseries")}
        pending = conn.execute("SELECT count(*) FROM eia_outbox WHERE sent_at IS NULL").fetchone()
    ours = [(k, v) for k, v, _ in messages if v["series_id"].endswith("sectorid=RES;stateid=US")]
    assert {(v["series_id"], v["raw_period"]) for _, v in ours} == table
    assert len(ours) == good
    assert all(key == value["series_id"] for key, value in ours)
    # The broker is the session's: other tests' DLQ messages are on the topic too, so read only ours.
    our_dlq = [v["reason"] for _, v, _ in dlq if (v.get("series_id") or "").endswith("sectorid=RES;stateid=US")]
    assert our_dlq[-bad:] == ["bad_period"]
    assert pending == (0,)


async def test_without_kafka_the_run_succeeds_and_says_kafka_is_off(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    add_series(setup.server.dataset, SEVEN[0])
    caplog.set_level(logging.INFO)
    state = await ingest_eia_series_timescale(catalog_path=setup.catalog([SEVEN[0].entry()]), return_state=True)
    assert state.is_completed(), state.message
    assert "Kafka publishing is off" in caplog.text
    with psycopg.connect(setup.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM eia_outbox").fetchone() == (0,)


def _all_text_in_database(dsn: str) -> str:
    """Every text and JSON value of every table of ours, as one string to search."""
    chunks: list[str] = []
    with psycopg.connect(dsn) as conn:
        columns = conn.execute(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name LIKE 'eia%%'
                 AND data_type IN ('text', 'jsonb', 'json', 'character varying', 'ARRAY')"""
        ).fetchall()
        for table, column in columns:
            for (value,) in conn.execute(f'SELECT "{column}"::text FROM "{table}"').fetchall():
                if value is not None:
                    chunks.append(value)
    return "\n".join(chunks)


async def test_the_api_key_appears_in_no_log_row_message_or_artifact(
    setup: Setup, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    registry = REGISTRY
    await setup.configure(kafka=(kafka_bootstrap, registry))
    spec, _, _ = _with_bad_rows(setup)  # the quarantined payload is where an echoed key would hide
    add_series(setup.server.dataset, SEVEN[3])
    setup.server.faults.error_rate = 0.3  # retried failures put URLs into exceptions and logs
    setup.server.faults.seed = 3
    await setup.configure(kafka=(kafka_bootstrap, registry), retries=8)
    caplog.set_level(logging.DEBUG)

    state = await ingest_eia_series_timescale(
        catalog_path=setup.catalog([spec.entry(), SEVEN[3].entry()]), return_state=True
    )
    assert any(API_KEY in q for q in setup.server.stats.seen_query_strings), "the stand-in must see the key"

    places: dict[str, Any] = {"captured logs": caplog.text}
    out, err = capfd.readouterr()
    places["stdout"], places["stderr"] = out, err
    places["database"] = _all_text_in_database(setup.dsn)
    messages = await asyncio.to_thread(read_topic, kafka_bootstrap, SERIES_TOPIC, schema_registry_url=registry)
    dlq = await asyncio.to_thread(read_topic, kafka_bootstrap, DLQ_TOPIC, schema_registry_url=registry)
    places["kafka"] = json.dumps([v for _, v, _ in messages + dlq], default=str)
    async with get_client() as client:
        assert state.state_details.flow_run_id is not None
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
        places["prefect logs"] = "\n".join(log.message for log in logs)
        artifacts = await client.read_artifacts()
        places["artifacts"] = json.dumps([a.model_dump(mode="json") for a in artifacts], default=str)
    places["state message"] = state.message or ""

    assert places["prefect logs"] and places["artifacts"] != "[]"
    leaks = [where for where, text in places.items() if API_KEY in text]
    assert leaks == []
