"""The daily SLA/KPI report, ingestion health and quality monitors, from fixture histories with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from blocks import COST_POLICY_BLOCK, EiaCostPolicy
from flows.monitoring import (
    eia_data_monitoring,
    eia_data_monitoring_daily,
    eia_quality_monitor,
    monitor_result,
)
from tasks.monitoring.sla import SlaInputs, evaluate, percentile
from tasks.monitoring.staleness import SeriesCompleteness
from tasks.monitoring.usage import RequestWindow
from tests.monitoring.conftest import insert_observations, months, write_catalog

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def ledger_hour(dsn: str, bucket: datetime, **counts: float) -> None:
    columns = ["tenant_id", "hour_bucket", *counts]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO eia_usage_ledger ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
            ("aurum-prod", bucket, *counts.values()),
        )


def quality_rows(dsn: str, batch: str, at: datetime, outcomes: dict[str, str], *, score: float) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO eia_batch_log (batch_id, run_id, tenant_id, source, received, gate_passed, failed_checks,
                   quality_score, created_at) VALUES (%s, 'r', 'aurum-prod', 'eia-api-v2', 10, %s, %s, %s, %s)""",
            (
                batch,
                all(o != "fail" for o in outcomes.values()),
                [n for n, o in outcomes.items() if o == "fail"],
                score,
                at,
            ),
        )
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO eia_quality_results (batch_id, run_id, tenant_id, check_name, severity, outcome,
                       checked_at) VALUES (%s, 'r', 'aurum-prod', %s, 'fail', %s, %s)""",
                [(batch, name, outcome, at) for name, outcome in outcomes.items()],
            )


def checks(n: int, **overrides: str) -> dict[str, str]:
    outcomes = {f"check_{i:02d}": "pass" for i in range(n)}
    outcomes.update(overrides)
    return outcomes


def test_sla_objectives_from_plain_inputs() -> None:
    assert percentile([], 0.95) is None
    assert percentile([0.0] * 19 + [100.0], 0.95) == 0.0  # nearest rank: the 19th of 20
    assert percentile([0.0] * 18 + [50.0, 100.0], 0.95) == 50.0
    objectives = evaluate(SlaInputs(NOW - timedelta(days=1), NOW, [], RequestWindow(), 0, 0, [], None, None, None))
    assert [o.verdict for o in objectives] == ["no data"] * 8  # nothing measured is never a pass
    ok = evaluate(
        SlaInputs(
            NOW - timedelta(days=1),
            NOW,
            [1.0, 2.0],
            RequestWindow(1000, 1000, 0, 0, 0, 900.0, 1000),
            100,
            100,
            [SeriesCompleteness("s", 10, 10)],
            90.0,
            100.0,
            0.005,
        )
    )
    assert [o.verdict for o in ok] == ["pass"] * 8


async def test_the_daily_report_artifact_has_every_sla_and_kpi_with_value_target_and_verdict(
    monitor_blocks: str, tmp_path: Path
) -> None:
    dsn = monitor_blocks
    # Cost policy: budget $0.03, the runbook's $0.005 per 1,000 requests.
    await EiaCostPolicy(monthly_budget_usd=Decimal("0.03")).save(COST_POLICY_BLOCK, overwrite=True)
    # In the 24 h window: 1,000 requests; 990 answered 2xx, 4 got a 500, 2 timed out, 4 got a 404.
    ledger_hour(
        dsn,
        datetime(2026, 11, 25, 2, tzinfo=UTC),
        requests=1000,
        requests_2xx=990,
        requests_5xx=4,
        requests_no_status=2,
        requests_4xx=4,
        errors_server_error=4,
        errors_timeout=2,
        errors_not_found=4,
        retries=6,
        latency_sum_s=2500.0,
        latency_count=1000,
    )
    # Earlier this month (outside the window, inside the month): 5,000 requests.
    ledger_hour(
        dsn,
        datetime(2026, 11, 20, 2, tzinfo=UTC),
        requests=5000,
        requests_2xx=5000,
        latency_sum_s=100.0,
        latency_count=5000,
    )
    # Quality: 40 checks in the window, 39 passed; a bad batch 3 days ago does not count.
    quality_rows(dsn, "b1", NOW - 10 * HOUR, checks(20), score=1.0)
    quality_rows(dsn, "b2", NOW - 9 * HOUR, checks(20, check_07="warn"), score=0.95)
    quality_rows(dsn, "b0", NOW - timedelta(days=3), checks(20, check_01="fail", check_02="fail"), score=0.9)
    # Two monthly series (lag 60 days: through August is due): one complete, one a month behind.
    catalog = write_catalog(
        tmp_path,
        [
            {
                "id": "retail",
                "route": "electricity/retail-sales",
                "frequency": "monthly",
                "data": ["price"],
                "publication_lag_days": 60,
            }
        ],
    )
    insert_observations(
        dsn,
        "COMPLETE",
        dataset="electricity/retail-sales",
        frequency="monthly",
        periods=months(datetime(2026, 1, 1, tzinfo=UTC), 8),
    )
    insert_observations(
        dsn,
        "BEHIND",
        dataset="electricity/retail-sales",
        frequency="monthly",
        periods=months(datetime(2026, 1, 1, tzinfo=UTC), 7),
    )

    state = await eia_data_monitoring_daily(catalog_path=catalog, as_of=NOW, return_state=True)
    result = monitor_result(state)
    assert state.is_completed() and result is not None, state.message

    # BEHIND holds January to July: August ended on September 1 and was due 60 days later, on 2026-10-31.
    late_h = (NOW - datetime(2026, 10, 31, tzinfo=UTC)).total_seconds() / 3600
    spend = Decimal(6000) * Decimal("0.005") / 1000  # 0.03 USD
    elapsed = Decimal((NOW - datetime(2026, 11, 1, tzinfo=UTC)).total_seconds()) / Decimal(30 * 86400)
    projected = (spend / elapsed).quantize(Decimal("0.01"))  # 0.04 USD
    expected = [
        {
            "type": "SLA",
            "objective": "Data freshness (p95)",
            "value": f"{late_h:.2f} h",
            "target": "< 24.00 h",
            "verdict": "fail",
        },
        {"type": "SLA", "objective": "API availability", "value": "99.40 %", "target": ">= 99.90 %", "verdict": "fail"},
        {
            "type": "SLA",
            "objective": "Data quality (validation pass rate)",
            "value": "97.50 %",
            "target": "> 95.00 %",
            "verdict": "pass",
        },
        {
            "type": "SLA",
            "objective": "Cost control (projected spend / budget)",
            "value": f"{float(projected / Decimal('0.03')) * 100:.2f} %",
            "target": "<= 110.00 %",
            "verdict": "fail",
        },
        {
            "type": "KPI",
            "objective": "Request success rate",
            "value": "99.00 %",
            "target": "> 98.00 %",
            "verdict": "pass",
        },
        {
            "type": "KPI",
            "objective": "Average response time",
            "value": "2.50 s",
            "target": "< 10.00 s",
            "verdict": "pass",
        },
        {"type": "KPI", "objective": "Data completeness", "value": "93.75 %", "target": "> 99.00 %", "verdict": "fail"},
        {
            "type": "KPI",
            "objective": "Cost efficiency (per 1,000 successful requests)",
            "value": "0.0051 USD",
            "target": "<= 0.0050 USD",
            "verdict": "fail",
        },
    ]
    assert projected == Decimal("0.04")
    assert [{k: row[k] for k in expected[0]} for row in result.rows] == expected

    async with get_client() as client:
        tables = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["eia-sla-report-table"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
        markdowns = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["eia-sla-report"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert tables and markdowns
    table: Any = tables[0].data
    rows = table if isinstance(table, list) else __import__("json").loads(table)
    assert [{k: r[k] for k in expected[0]} for r in rows] == expected
    markdown = str(markdowns[0].data)
    for row in expected:
        assert (
            f"| {row['type']} | {row['objective']} | {row['value']} | {row['target']} | {row['verdict']} |" in markdown
        )
    assert "`BEHIND`" in markdown  # named among the late and the least complete series
    assert {e.split(": ")[1] for e in result.events} == {
        "sla:data-freshness-p95", "sla:api-availability", "sla:cost-control-projected-spend-budget",
        "kpi:data-completeness", "kpi:cost-efficiency-per-1-000-successful-requests",
    }  # fmt: skip


async def test_ingestion_health_finds_a_run_stuck_after_a_pod_kill_and_reports_its_recovery(
    monitor_blocks: str,
) -> None:
    dsn = monitor_blocks
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO eia_run_log (run_id, flow_name, tenant_id, status, started_at, ended_at) VALUES
               ('done', 'ingest_eia_series_timescale', 'aurum-prod', 'completed', %s, %s),
               ('killed', 'ingest_eia_series_timescale', 'aurum-prod', 'running', %s, NULL),
               ('busy', 'ingest_eia_bulk', 'aurum-prod', 'running', %s, NULL)""",
            (NOW - 10 * HOUR, NOW - 9 * HOUR, NOW - 5 * HOUR, NOW - 5 * HOUR),
        )
    ledger_hour(
        dsn,
        datetime(2026, 11, 25, 3, tzinfo=UTC),
        requests=200,
        requests_2xx=180,
        requests_5xx=20,
        errors_server_error=20,
        retries=50,
        latency_sum_s=100.0,
        latency_count=200,
    )

    state = await eia_data_monitoring(as_of=NOW, return_state=True)
    result = monitor_result(state)
    assert state.is_completed() and result is not None, state.message
    by_name = {c.name: c for c in result.checks}
    assert by_name["stuck_runs"].breached and by_name["stuck_runs"].details["runs"] == ["killed"]  # bulk: 12 h limit
    assert by_name["ingestion_age:ingest_eia_series_timescale"].value == 9.0
    assert not by_name["ingestion_age:ingest_eia_series_timescale"].breached
    assert by_name["ingestion_age:ingest_eia_bulk"].breached  # tried, never completed
    assert by_name["error_rate"].value == 0.1 and by_name["error_rate"].breached
    assert by_name["retry_rate"].value == 0.25 and by_name["retry_rate"].breached
    assert not by_name["breaker_open"].breached
    assert sorted(result.events) == sorted(
        f"eia.monitor.breached: {n}"
        for n in ("stuck_runs", "ingestion_age:ingest_eia_bulk", "error_rate", "retry_rate")
    )

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE eia_run_log SET status = 'failed', ended_at = %s WHERE run_id = 'killed'", (NOW,))
    later = monitor_result(await eia_data_monitoring(as_of=NOW + HOUR, return_state=True))
    assert later is not None
    assert later.events == ["eia.monitor.recovered: stuck_runs"]


async def test_the_quality_monitor_reports_score_trend_and_worst_checks(monitor_blocks: str) -> None:
    dsn = monitor_blocks
    quality_rows(dsn, "y1", NOW - 30 * HOUR, checks(20), score=1.0)  # the window before: all passed
    quality_rows(dsn, "t1", NOW - 5 * HOUR, checks(20, check_03="fail", check_04="warn"), score=0.9)
    quality_rows(dsn, "t2", NOW - 4 * HOUR, checks(20, check_03="fail"), score=0.95)

    result = monitor_result(await eia_quality_monitor(as_of=NOW, return_state=True))
    assert result is not None
    summary = result.report
    assert summary.current.pass_rate == 37 / 40
    assert summary.current.score == pytest.approx(0.925)
    assert summary.latest_score == 0.95
    assert summary.trend == "worsening"
    assert [(w.check_name, w.failed, w.warned) for w in summary.worst] == [("check_03", 2, 0), ("check_04", 0, 1)]
    assert {c.name for c in result.checks if c.breached} == {
        "quality_score",
        "check_pass_rate",
        "pass_rate_drop",
        "blocked_batches",
    }
    assert "check_03" in result.markdown and "worsening" in result.markdown
