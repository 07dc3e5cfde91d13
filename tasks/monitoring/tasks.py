"""The Prefect tasks the monitoring flows call, each a thin wrapper over a plain `gather_*` function.

Why it exists: a monitoring flow reads like its runbook line (gather → judge → record → notify →
report); the reading and storing happen here, over one short connection each, and the judging is
the pure code of this package. Every `gather_*` function takes a fixed `now`, so tests replay a
fixture history with known answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.core.catalog import load_catalog
from tasks.monitoring.checks import Check, Transition
from tasks.monitoring.health import HealthThresholds, IngestionHealth, assess_health
from tasks.monitoring.quality import QualitySummary, summarize
from tasks.monitoring.sla import SlaInputs
from tasks.monitoring.staleness import (
    CadenceMap,
    SeriesCompleteness,
    StalenessReport,
    assess,
    completeness_window,
)
from tasks.monitoring.store import (
    count_received,
    read_quality,
    read_row_counts,
    read_runs,
    read_series_extents,
    save_checks,
    save_staleness,
)
from tasks.monitoring.usage import read_request_window
from tasks.quota.breaker import breaker_status
from tasks.quota.budget import CostPolicy, budget_snapshot, month_bounds
from tasks.store.database import connect
from tasks.store.tables import QUALITY_RESULTS


def gather_health(
    dsn: str, tenant_id: str, now: datetime, thresholds: HealthThresholds, window: timedelta
) -> IngestionHealth:
    since = now - window
    with connect(dsn) as conn:
        runs = read_runs(conn, tenant_id, since)
        rows = read_row_counts(conn, tenant_id, since)
        requests = read_request_window(conn, tenant_id, since, now)
        breaker = breaker_status(conn).state
    return assess_health(runs, rows, requests, breaker, now, thresholds=thresholds, window=window)


def gather_staleness(
    dsn: str,
    tenant_id: str,
    now: datetime,
    *,
    catalog_path: str | None = None,
    grace: timedelta = timedelta(0),
    include_uncataloged: bool = False,
) -> StalenessReport:
    cadences = CadenceMap.from_catalog(load_catalog(catalog_path), grace=grace)
    with connect(dsn) as conn:
        extents = read_series_extents(conn, tenant_id)
    return assess(cadences, extents, now, include_uncataloged=include_uncataloged)


def store_staleness(dsn: str, tenant_id: str, report: StalenessReport) -> None:
    with connect(dsn) as conn:
        save_staleness(conn, tenant_id, report)


def gather_quality(dsn: str, tenant_id: str, now: datetime, window: timedelta, days: int) -> QualitySummary:
    since = now - max(2 * window, timedelta(days=days))
    with connect(dsn) as conn:
        checks, batches = read_quality(conn, tenant_id, since)
    return summarize(checks, batches, now, window=window, days=days)


@dataclass(frozen=True, slots=True)
class SlaGathered:
    inputs: SlaInputs
    staleness: StalenessReport
    completeness: tuple[SeriesCompleteness, ...]


def gather_sla(
    dsn: str,
    tenant_id: str,
    now: datetime,
    window: timedelta,
    policy: CostPolicy | None,
    *,
    catalog_path: str | None = None,
) -> SlaGathered:
    """Everything the SLA/KPI report needs, over [now - window, now) (cost: the UTC month to date)."""
    cadences = CadenceMap.from_catalog(load_catalog(catalog_path))
    since = now - window
    with connect(dsn) as conn:
        extents = read_series_extents(conn, tenant_id)
        staleness = assess(cadences, extents, now)
        windows = []
        for extent in extents:
            matched = cadences.match(extent)
            if matched is None:
                continue
            w = completeness_window(extent, matched[1], now)
            if w is not None:
                windows.append(w)
        received = count_received(conn, tenant_id, windows)
        requests = read_request_window(conn, tenant_id, since, now)
        quality = conn.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE outcome = 'pass') FROM {QUALITY_RESULTS}
                WHERE tenant_id = %s AND checked_at >= %s AND checked_at < %s""",
            (tenant_id, since, now),
        ).fetchone()
        month_start, _ = month_bounds(now)
        month = read_request_window(conn, tenant_id, month_start, now)
    assert quality is not None
    completeness = tuple(SeriesCompleteness(w.series_id, w.expected, received.get(w.series_id, 0)) for w in windows)
    budget = budget_snapshot(month.requests, policy, now) if policy is not None else None
    inputs = SlaInputs(
        window_start=since,
        window_end=now,
        lateness_hours=[s.lateness_hours for s in staleness.items if s.newest_period is not None],
        requests=requests,
        quality_checks_evaluated=int(quality[0]),
        quality_checks_passed=int(quality[1]),
        completeness=completeness,
        projected_month_usd=float(budget.projected_usd) if budget else None,
        monthly_budget_usd=float(budget.budget_usd) if budget else None,
        cost_per_1000_requests_usd=float(policy.cost_per_1000_requests) if policy else None,
    )
    return SlaGathered(inputs, staleness, completeness)


def record_checks(dsn: str, tenant_id: str, monitor: str, checks: Sequence[Check], now: datetime) -> list[Transition]:
    with connect(dsn) as conn:
        return save_checks(conn, tenant_id, monitor, checks, now)


# -- Prefect tasks -----------------------------------------------------------------------------

gather_health_task = task(name="gather-ingestion-health", cache_policy=NO_CACHE)(gather_health)
gather_staleness_task = task(name="gather-staleness", cache_policy=NO_CACHE)(gather_staleness)
store_staleness_task = task(name="store-staleness-snapshot", cache_policy=NO_CACHE)(store_staleness)
gather_quality_task = task(name="gather-quality", cache_policy=NO_CACHE)(gather_quality)
gather_sla_task = task(name="gather-sla-inputs", cache_policy=NO_CACHE)(gather_sla)
record_checks_task = task(name="record-checks", cache_policy=NO_CACHE)(record_checks)
