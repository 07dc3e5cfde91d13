"""The four monitoring flows of the runbook, each: gather → judge → record → notify → report.

- `eia_data_monitoring` (every 30 min): ingestion health: last successful run per flow, rows in the
  last 24 h, EIA error and retry rates from the usage ledger, breaker state, runs stuck in Running.
- `eia_data_monitoring_daily` (09:00 UTC): the SLA/KPI report (markdown + table artifacts) with
  every runbook SLA and KPI, its value, target and verdict.
- `eia_staleness_monitor` (every 15 min): per-series cadence from the catalog; the stale list with
  how late each series is; the snapshot the collector exports as `eia_stale_series`.
- `eia_quality_monitor` (hourly): quality score and pass rate from gate results, trend, worst checks.

Each flow stores its checks' states and emits a Prefect event when a check crosses its threshold
(`eia.monitor.breached` / `eia.monitor.recovered`, see `tasks/monitoring/events.py`). A breach is a
finding, not a failure: the run completes and says what it found. All work happens in tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.states import Completed

from blocks import API_KEY_BLOCK, COST_POLICY_BLOCK, DATABASE_BLOCK, ENDPOINTS_BLOCK, KAFKA_BLOCK
from flows._run import ensure_schema_current, publish_report
from flows.settings import RunSettings, load_run_settings
from tasks.monitoring import Check
from tasks.monitoring import health as health_verdict
from tasks.monitoring import quality as quality_verdict
from tasks.monitoring import sla as sla_verdict
from tasks.monitoring import staleness as staleness_verdict
from tasks.monitoring.events import emit_transitions
from tasks.monitoring.tasks import (
    gather_health_task,
    gather_quality_task,
    gather_sla_task,
    gather_staleness_task,
    record_checks_task,
    store_staleness_task,
)

DATA_MONITORING: Final = "eia_data_monitoring"
DAILY_REPORT: Final = "eia_data_monitoring_daily"
STALENESS_MONITOR: Final = "eia_staleness_monitor"
QUALITY_MONITOR: Final = "eia_quality_monitor"


@dataclass(slots=True)
class MonitorResult:
    monitor: str
    message: str
    checks: list[Check]
    events: list[str]  # "event name: check" for each crossing this run emitted
    report: Any = None  # the monitor's own report object (health, staleness, quality summary, SLA)
    markdown: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def breached(self) -> list[Check]:
        return [c for c in self.checks if c.breached]


def monitor_result(state: State[Any]) -> MonitorResult | None:
    """The run's result from its final state, without re-raising."""
    data = state.data
    data = getattr(data, "result", data)
    return data if isinstance(data, MonitorResult) else None


async def _settings(
    api_key_block: str,
    endpoints_block: str,
    database_block: str,
    kafka_block: str,
    cost_policy_block: str = COST_POLICY_BLOCK,
) -> RunSettings:
    settings = await load_run_settings(
        api_key_block=api_key_block,
        endpoints_block=endpoints_block,
        database_block=database_block,
        kafka_block=kafka_block,
        need_api_key=False,
        cost_policy_block=cost_policy_block,
    )
    ensure_schema_current(settings.dsn)
    return settings


def _now(as_of: datetime | None) -> datetime:
    if as_of is None:
        return datetime.now(UTC)
    return as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC)


def _hours(mapping: Mapping[str, float] | None, defaults: Mapping[str, timedelta]) -> dict[str, timedelta]:
    merged = dict(defaults)
    merged.update({k: timedelta(hours=v) for k, v in (mapping or {}).items()})
    return merged


async def _conclude(
    monitor: str,
    settings: RunSettings,
    now: datetime,
    checks: Sequence[Check],
    *,
    artifact_key: str,
    markdown: str,
    rows: list[dict[str, Any]],
    report: Any,
) -> State[MonitorResult]:
    """Records the checks, emits an event per crossing, publishes the artifacts, completes the run."""
    log = get_run_logger()
    changes = await asyncio.to_thread(record_checks_task, settings.dsn, settings.tenant_id, monitor, checks, now)
    events = emit_transitions(monitor, settings.tenant_id, changes)
    await publish_report(artifact_key, markdown, rows, description=f"{monitor} at {now:%Y-%m-%d %H:%M} UTC")
    breached = [c for c in checks if c.breached]
    message = (
        "all checks ok"
        if not breached
        else f"{len(breached)} check(s) breached: "
        + "; ".join(c.message for c in breached[:5])
        + (" …" if len(breached) > 5 else "")
    )
    for event in events:
        log.warning("event %s", event)
    log.info("%s: %s", monitor, message)
    result = MonitorResult(monitor, message, list(checks), events, report, markdown, rows)
    return Completed(message=message, data=result)


@flow(name=DATA_MONITORING, log_prints=False, validate_parameters=True, persist_result=False)
async def eia_data_monitoring(
    window_hours: float = 24.0,
    error_rate_max: float = health_verdict.ERROR_RATE_MAX,
    retry_rate_max: float = health_verdict.RETRY_RATE_MAX,
    max_age_hours: dict[str, float] | None = None,
    stuck_after_hours: dict[str, float] | None = None,
    as_of: datetime | None = None,
    api_key_block: str = API_KEY_BLOCK,
    endpoints_block: str = ENDPOINTS_BLOCK,
    database_block: str = DATABASE_BLOCK,
    kafka_block: str = KAFKA_BLOCK,
) -> State[MonitorResult]:
    """Ingestion health: last success per flow, rows (24 h), error/retry rates, breaker, stuck runs.

    Args:
        window_hours: window for rows, error and retry rates.
        max_age_hours: per flow, hours after its last successful run that count as stalled.
        stuck_after_hours: per flow, hours in Running after which a run is stuck (killed pod).
        as_of: evaluate as of this time (default: now).
    """
    settings = await _settings(api_key_block, endpoints_block, database_block, kafka_block)
    now = _now(as_of)
    thresholds = health_verdict.HealthThresholds(
        max_age=_hours(max_age_hours, health_verdict.DEFAULT_MAX_AGE),
        stuck_after=_hours(stuck_after_hours, health_verdict.DEFAULT_STUCK_AFTER),
        error_rate=error_rate_max,
        retry_rate=retry_rate_max,
    )
    health = await asyncio.to_thread(
        gather_health_task, settings.dsn, settings.tenant_id, now, thresholds, timedelta(hours=window_hours)
    )
    checks = health_verdict.health_checks(health, thresholds)
    return await _conclude(
        DATA_MONITORING,
        settings,
        now,
        checks,
        artifact_key="eia-ingestion-health",
        markdown=health_verdict.markdown_report(health, checks),
        rows=health_verdict.table_rows(checks),
        report=health,
    )


@flow(name=STALENESS_MONITOR, log_prints=False, validate_parameters=True, persist_result=False)
async def eia_staleness_monitor(
    catalog_path: str | None = None,
    grace_hours: float = 0.0,
    include_uncataloged: bool = False,
    as_of: datetime | None = None,
    api_key_block: str = API_KEY_BLOCK,
    endpoints_block: str = ENDPOINTS_BLOCK,
    database_block: str = DATABASE_BLOCK,
    kafka_block: str = KAFKA_BLOCK,
) -> State[MonitorResult]:
    """Stale series: each catalogued series whose next period is overdue, and by how much.

    Args:
        catalog_path: catalog JSON (default: the packaged catalog); cadence per entry comes from its
            frequency and `publication_lag_days`.
        grace_hours: slack added to every series' publication lag.
        include_uncataloged: also judge series the catalog does not name (by frequency defaults).
        as_of: evaluate as of this time (default: now).
    """
    settings = await _settings(api_key_block, endpoints_block, database_block, kafka_block)
    now = _now(as_of)
    report = await asyncio.to_thread(
        gather_staleness_task,
        settings.dsn,
        settings.tenant_id,
        now,
        catalog_path=catalog_path,
        grace=timedelta(hours=grace_hours),
        include_uncataloged=include_uncataloged,
    )
    await asyncio.to_thread(store_staleness_task, settings.dsn, settings.tenant_id, report)
    return await _conclude(
        STALENESS_MONITOR,
        settings,
        now,
        staleness_verdict.staleness_checks(report),
        artifact_key="eia-staleness",
        markdown=staleness_verdict.markdown_report(report),
        rows=staleness_verdict.table_rows(report),
        report=report,
    )


@flow(name=QUALITY_MONITOR, log_prints=False, validate_parameters=True, persist_result=False)
async def eia_quality_monitor(
    window_hours: float = 24.0,
    days: int = 7,
    score_min: float = quality_verdict.SCORE_TARGET,
    as_of: datetime | None = None,
    api_key_block: str = API_KEY_BLOCK,
    endpoints_block: str = ENDPOINTS_BLOCK,
    database_block: str = DATABASE_BLOCK,
    kafka_block: str = KAFKA_BLOCK,
) -> State[MonitorResult]:
    """Quality score and check pass rate from the gate's results, their trend and the worst checks.

    Args:
        window_hours: the window judged (and compared with the window before it).
        days: days of per-day history in the report.
        score_min: minimum score and pass rate (runbook: 0.95).
        as_of: evaluate as of this time (default: now).
    """
    settings = await _settings(api_key_block, endpoints_block, database_block, kafka_block)
    now = _now(as_of)
    summary = await asyncio.to_thread(
        gather_quality_task, settings.dsn, settings.tenant_id, now, timedelta(hours=window_hours), days
    )
    return await _conclude(
        QUALITY_MONITOR,
        settings,
        now,
        quality_verdict.quality_checks(summary, score_min=score_min),
        artifact_key="eia-quality",
        markdown=quality_verdict.markdown_report(summary),
        rows=quality_verdict.table_rows(summary),
        report=summary,
    )


@flow(name=DAILY_REPORT, log_prints=False, validate_parameters=True, persist_result=False)
async def eia_data_monitoring_daily(
    window_hours: float = 24.0,
    catalog_path: str | None = None,
    cost_policy_block: str = COST_POLICY_BLOCK,
    as_of: datetime | None = None,
    api_key_block: str = API_KEY_BLOCK,
    endpoints_block: str = ENDPOINTS_BLOCK,
    database_block: str = DATABASE_BLOCK,
    kafka_block: str = KAFKA_BLOCK,
) -> State[MonitorResult]:
    """The daily SLA/KPI report: every runbook SLA and KPI with value, target and verdict.

    Args:
        window_hours: the period the report covers, ending now (cost: the UTC month to date).
        catalog_path: catalog JSON (default: the packaged catalog) for freshness and completeness.
        cost_policy_block: the cost-policy block (budget and charge-back rate).
        as_of: report as of this time (default: now).
    """
    settings = await _settings(api_key_block, endpoints_block, database_block, kafka_block, cost_policy_block)
    now = _now(as_of)
    gathered = await asyncio.to_thread(
        gather_sla_task,
        settings.dsn,
        settings.tenant_id,
        now,
        timedelta(hours=window_hours),
        settings.cost,
        catalog_path=catalog_path,
    )
    objectives = sla_verdict.evaluate(gathered.inputs)
    late = [(s.series_id, s.lateness_hours) for s in gathered.staleness.stale if s.newest_period is not None][:10]
    worst = sorted(gathered.completeness, key=lambda c: (c.ratio, c.series_id))[:10]
    markdown = sla_verdict.markdown_report(
        gathered.inputs, objectives, worst_series=[w for w in worst if w.ratio < 1], late_series=late
    )
    return await _conclude(
        DAILY_REPORT,
        settings,
        now,
        sla_verdict.sla_checks(objectives),
        artifact_key="eia-sla-report",
        markdown=markdown,
        rows=sla_verdict.table_rows(objectives),
        report=objectives,
    )
