"""The API key stays secret when things go wrong: timeouts, cut-off bodies, 500s, throttling, a 404,
quarantined rows, with httpx and httpcore logging at DEBUG and the pipeline's own loggers also sent to
the Prefect API (as `PREFECT_LOGGING_EXTRA_LOGGERS=tasks` would). Extends the happy-path scan in
test_series_kafka_and_secrets.py to error messages, tracebacks and Prefect's task-run failure states.

(httpx itself must not be an extra logger: Prefect ships logs with httpx, so each shipment would log
another line to ship. Its records reach the console and log files, which the scan covers.)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler

from flows.series import ingest_eia_series_timescale, run_result
from tasks.publish.consumer import read_topic
from tasks.standin.data import DATE_FORMATS, synthetic_route_series
from tests.flows.conftest import API_KEY, Setup
from tests.flows.series_data import SEVEN, SeriesSpec, add_series
from tests.flows.test_series_kafka_and_secrets import DLQ_TOPIC, REGISTRY, SERIES_TOPIC, _all_text_in_database

pytestmark = pytest.mark.slow


@pytest.fixture
def debug_logging() -> Iterator[None]:
    """httpx and httpcore at DEBUG; the `tasks` loggers also to Prefect's API, through a handler added
    after the flow installed its filter."""
    handler = APILogHandler()
    ours = logging.getLogger("tasks")
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore", "tasks")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    ours.addHandler(handler)
    try:
        yield
    finally:
        ours.removeHandler(handler)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


async def _prefect_text(flow_run_id: Any) -> dict[str, str]:
    """Everything Prefect keeps about the run: logs, every state of every task run, artifacts."""
    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        task_runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        states = []
        for task_run in task_runs:
            states += await client.read_task_run_states(task_run.id)
        flow_states = await client.read_flow_run_states(flow_run_id)
        artifacts = await client.read_artifacts()
    failures = [s for s in states if s.is_failed() or s.name == "AwaitingRetry"]
    assert failures, "the faults must produce failed task-run states"
    return {
        "prefect logs": "\n".join(log.message for log in logs),
        "task-run states": "\n".join(f"{s.name}: {s.message}" for s in states),
        "flow-run states": "\n".join(f"{s.name}: {s.message}" for s in flow_states),
        "task-run names": "\n".join(t.name for t in task_runs),
        "artifacts": json.dumps([a.model_dump(mode="json") for a in artifacts], default=str),
    }


async def test_the_key_appears_nowhere_after_timeouts_bad_bodies_errors_and_retries(
    setup: Setup,
    kafka_bootstrap: str,
    debug_logging: None,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    spec = SeriesSpec(
        "faulty",
        "natural-gas/pri/fut",
        "daily",
        "value",
        "$/MMBTU",
        {"series": "SECRETSCAN"},
        70,
        "2026-06-01",
        unit_column="units",
        base=3.1,
    )
    add_series(setup.server.dataset, spec)
    bad = synthetic_route_series(
        "electricity/retail-sales",
        "monthly",
        n_points=3,
        facets={"stateid": "US", "sectorid": "SCAN"},
        column="price",
        unit="cents per kilowatt-hour",
        start="2025-01",
    )
    bad.append(dict(bad[0], period="2025-02-30"))  # quarantined, and published on the DLQ
    setup.server.dataset.add_route_rows("electricity/retail-sales", "monthly", DATE_FORMATS["monthly"], bad)
    entries = [
        spec.entry(),
        {**spec.entry(), "id": "missing-route", "route": "natural-gas/no/such/route"},  # 404, named in the report
        {
            "id": "quarantine",
            "route": "electricity/retail-sales",
            "frequency": "monthly",
            "data": ["price"],
            "facets": {"stateid": ["US"], "sectorid": ["SCAN"]},
            "series_facets": ["sectorid", "stateid"],
        },
    ]
    faults = setup.server.faults
    # The three entries run concurrently, so the seeded draws land on whichever request arrives; the
    # 404 entry can take one and hide it. One cut body and one late answer are therefore counted out.
    faults.seed, faults.error_rate, faults.malformed_rate, faults.timeout_rate = 77, 0.2, 0.2, 0.15
    faults.cut_next, faults.hang_next = 1, 1
    faults.timeout_sleep_s = 2.0
    faults.burst_429, faults.retry_after_s = 1, 1
    await setup.configure(
        kafka=(kafka_bootstrap, REGISTRY), page_size=25, timeout_s=1.0, retries=8, retry_base_delay_s=0.02
    )
    caplog.set_level(logging.DEBUG)

    state = await asyncio.wait_for(
        ingest_eia_series_timescale(catalog_path=setup.catalog(entries), return_state=True), 240
    )

    result = run_result(state)
    assert result is not None and state.is_failed()  # the 404 entry fails the run, by name
    assert "missing-route" in (state.message or "")
    assert any(API_KEY in q for q in setup.server.stats.seen_query_strings), "the stand-in must see the key"
    stats = setup.server.stats
    assert stats.statuses[500] and stats.statuses[429] and stats.statuses[404]
    assert any("timed out" in r.message for r in caplog.records), "a request must have timed out"
    assert any("not valid JSON" in r.message for r in caplog.records), "a body must have been cut off"
    assert any("api_key=***" in r.getMessage() for r in caplog.records if r.name == "httpx")

    places: dict[str, str] = {"captured logs": caplog.text, "state message": state.message or ""}
    places["entry errors"] = "\n".join(str(e.error) for e in result.entries)
    out, err = capfd.readouterr()
    places["stdout"], places["stderr"] = out, err
    places["database"] = _all_text_in_database(setup.dsn)
    series = await asyncio.to_thread(read_topic, kafka_bootstrap, SERIES_TOPIC, schema_registry_url=REGISTRY)
    dlq = await asyncio.to_thread(read_topic, kafka_bootstrap, DLQ_TOPIC, schema_registry_url=REGISTRY)
    assert any(v.get("reason") == "bad_period" for _, v, _ in dlq)
    places["kafka"] = json.dumps([[k, v, h] for k, v, h in series + dlq], default=str)
    await APILogHandler.aflush()
    assert state.state_details.flow_run_id is not None
    places |= await _prefect_text(state.state_details.flow_run_id)

    assert "Kafka publish" in places["prefect logs"] or "outbox drain" in places["prefect logs"]  # ours did
    leaks = [where for where, text in places.items() if API_KEY in text]
    assert leaks == []


async def test_a_series_run_and_a_bulk_run_leave_the_key_nowhere(
    setup: Setup,
    kafka_bootstrap: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    from flows.bulk import bulk_run_result, ingest_eia_bulk
    from tests.bulk.synthetic import archive_bytes, category_line, manifest, series_line, tokens

    spec = SEVEN[0]
    add_series(setup.server.dataset, spec)
    leaky_url = f"https://api.eia.gov/v2/seriesid/SYN.LEAK.M?api_key={API_KEY}"  # someone pasted a URL
    lines = [
        series_line("SYN.OK.M", "M", "megawatthours", [[p, 10.0 + i] for i, p in enumerate(tokens("M", 12))]),
        series_line("SYN.BAD.M", "M", "megawatthours", [["202113", 1.0]]),  # an impossible month: quarantined
        b"not json " + leaky_url.encode(),  # quarantined with the raw line
        category_line(10, None, "root", ["SYN.OK.M"]),
    ]
    setup.server.dataset.bulk_manifest = manifest({"SYN": "2024-08-23T15:23:15-04:00"})
    setup.server.dataset.bulk_files = {"SYN.zip": archive_bytes("SYN", lines)}
    setup.server.faults.error_rate, setup.server.faults.seed = 0.3, 5
    await setup.configure(kafka=(kafka_bootstrap, REGISTRY), retries=8, retry_base_delay_s=0.02)
    caplog.set_level(logging.DEBUG)

    series_state = await asyncio.wait_for(
        ingest_eia_series_timescale(catalog_path=setup.catalog([spec.entry()]), return_state=True), 240
    )
    bulk_state = await asyncio.wait_for(
        ingest_eia_bulk(datasets=["SYN"], work_dir=str(tmp_path / "bulk"), progress=False, return_state=True), 240
    )

    assert series_state.is_completed(), series_state.message
    bulk_result = bulk_run_result(bulk_state)
    assert bulk_result is not None and bulk_state.is_completed(), bulk_state.message
    assert bulk_result.counts.quarantined == 2
    places: dict[str, str] = {"captured logs": caplog.text}
    out, err = capfd.readouterr()
    places["stdout"], places["stderr"] = out, err
    places["database"] = _all_text_in_database(setup.dsn)
    assert "api_key=***" in places["database"]  # the pasted URL was kept, masked
    topics = [SERIES_TOPIC, DLQ_TOPIC, "aurum.ref.eia.bulk.v1"]
    messages = [
        m
        for topic in topics
        for m in await asyncio.to_thread(read_topic, kafka_bootstrap, topic, schema_registry_url=REGISTRY)
    ]
    places["kafka"] = json.dumps([[k, v, h] for k, v, h in messages], default=str)
    for state in (series_state, bulk_state):
        assert state.state_details.flow_run_id is not None
        async with get_client() as client:
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
            )
        places[f"prefect logs {state.state_details.flow_run_id}"] = "\n".join(log.message for log in logs)
    async with get_client() as client:
        places["artifacts"] = json.dumps(
            [a.model_dump(mode="json") for a in await client.read_artifacts()], default=str
        )

    leaks = [where for where, text in places.items() if API_KEY in text]
    assert leaks == []


async def test_bulk_series_metadata_is_stored_without_an_api_key(setup: Setup, tmp_path: Any) -> None:
    from flows.bulk import ingest_eia_bulk
    from tests.bulk.synthetic import archive_bytes, manifest, series_line, tokens

    leaky_url = f"https://api.eia.gov/v2/seriesid/SYN.LEAK.M?api_key={API_KEY}"
    line = series_line("SYN.LEAK.M", "M", "megawatthours", [[p, 1.0] for p in tokens("M", 3)], source=leaky_url)
    setup.server.dataset.bulk_manifest = manifest({"SYN": "2024-08-23T15:23:15-04:00"})
    setup.server.dataset.bulk_files = {"SYN.zip": archive_bytes("SYN", [line])}

    state = await ingest_eia_bulk(datasets=["SYN"], work_dir=str(tmp_path / "bulk"), progress=False, return_state=True)

    assert state.is_completed(), state.message
    assert API_KEY not in _all_text_in_database(setup.dsn)
