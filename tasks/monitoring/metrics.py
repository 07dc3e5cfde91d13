"""Prometheus metrics read from PostgreSQL at scrape time: a custom prometheus-client Collector.

Why it exists: flow runs are short-lived pods, so no process lives long enough to own a counter.
The numbers that matter are durable rows (usage ledger, run log, batch log, quality results,
breaker, outbox, staleness snapshot), so the collector reads them on every scrape. Counters built
from all-time sums survive pod restarts and add up across workers; every collector replica exports
the same values (alert rules aggregate with `max`/ratios accordingly).

A scrape never fails because the database is down: the database-backed families are left out and
`eia_collector_database_up` says 0, so Prometheus still gets an answer and can alert on it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

import psycopg
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from psycopg.rows import TupleRow
from sqlalchemy import extract, literal
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlmodel import col, func, select

from tasks.monitoring.health import BREAKER_STATES, INGESTION_FLOWS, HealthThresholds
from tasks.quota.breaker import DEFAULT_BREAKER
from tasks.quota.budget import CostPolicy
from tasks.quota.status import ledger_totals, quota_status
from tasks.store.database import APPLICATION_NAME, describe_dsn
from tasks.store.models import BatchLog, BreakerState, OutboxMessage, QualityResult, RunLog, SeriesStaleness
from tasks.store.sessions import borrowed, total

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 5
STATEMENT_TIMEOUT_MS: Final = 5000
QUALITY_WINDOW: Final = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class LedgerReading:
    """What the usage ledger says, in the shapes the metrics need."""

    requests_by_class: Mapping[str, int] = field(default_factory=dict)  # 2xx, 3xx, 4xx, 5xx, no_status
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    retries: int = 0
    response_bytes: int = 0
    duration_buckets: Sequence[tuple[float, int]] = ()  # (upper bound s, cumulative count), ascending
    duration_sum_s: float = 0.0
    duration_count: int = 0
    requests_today: int = 0
    requests_this_hour: int = 0
    quota_used: Mapping[str, int] = field(default_factory=dict)  # window -> counted (after `eia quota reset`)
    quota_remaining: Mapping[str, int] = field(default_factory=dict)  # window -> requests left
    quota_limit: Mapping[str, int] = field(default_factory=dict)
    cost_usd_month: float = 0.0
    cost_projected_usd: float | None = None
    budget_usd: float | None = None
    budget_used_ratio: float | None = None
    # The shared request budget (tasks/quota/throttle.py): all workers together, and each live worker.
    throttle_global_rate: float = 0.0
    throttle_worker_share: Mapping[str, float] = field(default_factory=dict)  # worker -> requests/s


def read_ledger(conn: psycopg.Connection[TupleRow], tenant_id: str, policy: CostPolicy, now: datetime) -> LedgerReading:
    """The ledger's all-time totals and its quota status at `now`, through the ledger's own read side."""
    totals = ledger_totals(conn, tenant_id)
    status = quota_status(conn, tenant_id, policy, now)
    budget = status.budget
    return LedgerReading(
        requests_by_class=dict(totals.requests_by_status_class),
        errors_by_kind=dict(totals.errors_by_kind),
        retries=totals.retries,
        response_bytes=totals.bytes,
        duration_buckets=tuple(totals.latency_buckets),
        duration_sum_s=totals.latency_sum_s,
        duration_count=totals.latency_count,
        requests_today=status.day.requests,
        requests_this_hour=status.hour.requests,
        quota_used={"hour": status.hour.used, "day": status.day.used},
        quota_remaining={"hour": status.hour.remaining, "day": status.day.remaining},
        quota_limit={"hour": status.hour.limit, "day": status.day.limit},
        throttle_global_rate=status.rate.global_per_s,
        throttle_worker_share={w.worker: w.rate_per_s for w in status.rate.shares},
        cost_usd_month=float(budget.spend_exact_usd),
        cost_projected_usd=float(budget.projected_usd),
        budget_usd=float(budget.budget_usd),
        budget_used_ratio=float(budget.spend_exact_usd / budget.budget_usd) if budget.budget_usd else None,
    )


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Every database-backed value one scrape exports (plain values: `families()` is pure)."""

    ledger: LedgerReading | None
    last_success: Mapping[str, float]  # flow -> unix seconds (0 = never)
    finished_runs: Mapping[tuple[str, str], int]  # (flow, status) -> runs
    stuck_runs: Mapping[str, int]  # flow -> runs stuck in running
    quality_latest: float | None
    quality_window: float | None
    quality_checks: Mapping[str, int]  # outcome -> checks in the window
    breakers: Mapping[str, str]  # name -> closed | half-open | open
    stale_series: int | None  # None: the staleness monitor has not run yet
    staleness_checked_at: float | None
    rows: Mapping[str, int]  # received | loaded | quarantined | skipped -> all-time rows
    outbox_pending: int
    outbox_oldest_age_s: float


def _epoch(moment: datetime | None) -> float:
    return 0.0 if moment is None else moment.timestamp()


def read_snapshot(
    conn: psycopg.Connection[TupleRow],
    tenant_id: str,
    now: datetime,
    *,
    thresholds: HealthThresholds | None = None,
    policy: CostPolicy | None = None,
) -> MetricsSnapshot:
    """Everything one scrape exports; the ledger part is read only when a cost policy is given."""
    limits = thresholds or HealthThresholds()
    r, b, q, s, o = RunLog, BatchLog, QualityResult, SeriesStaleness, OutboxMessage
    with borrowed(conn) as session:
        newest = session.exec(
            select(r.flow_name, func.max(r.ended_at))
            .where(r.tenant_id == tenant_id, r.status == "completed")
            .group_by(col(r.flow_name))
        ).all()
        finished = session.exec(
            select(r.flow_name, r.status, func.count())
            .where(r.tenant_id == tenant_id, r.status != "running")
            .group_by(col(r.flow_name), col(r.status))
        ).all()
        running_since = session.exec(
            select(r.flow_name, r.started_at).where(r.tenant_id == tenant_id, r.status == "running")
        ).all()
        latest = session.exec(
            select(b.quality_score)
            .where(b.tenant_id == tenant_id, col(b.quality_score).is_not(None))
            .order_by(col(b.created_at).desc())
            .limit(1)
        ).first()
        outcomes = session.exec(
            select(q.outcome, func.count())
            .where(q.tenant_id == tenant_id, col(q.checked_at) >= now - QUALITY_WINDOW)
            .group_by(col(q.outcome))
        ).all()
        breakers = session.exec(select(BreakerState.name, BreakerState.state)).all()
        stale, checked = session.exec(
            select(func.count().filter(col(s.stale)), func.max(s.checked_at)).where(s.tenant_id == tenant_id)
        ).one()
        received, loaded, quarantined, skipped = session.exec(
            select(total(b.received), total(b.inserted, b.updated), total(b.quarantined), total(b.skipped)).where(
                b.tenant_id == tenant_id
            )
        ).one()
        pending, oldest_age = session.exec(
            select(
                func.count(), extract("epoch", literal(now, TIMESTAMP(timezone=True)) - func.min(o.created_at))
            ).where(col(o.sent_at).is_(None))
        ).one()

    last = {flow: 0.0 for flow in INGESTION_FLOWS}
    for flow, ended in newest:
        last[flow] = _epoch(ended)
    stuck: dict[str, int] = {flow: 0 for flow in INGESTION_FLOWS}
    for flow, started in running_since:
        stuck.setdefault(flow, 0)
        if now - started > limits.stuck_limit(flow):
            stuck[flow] += 1
    checks = {outcome: int(n) for outcome, n in outcomes}
    evaluated = sum(checks.values())
    states = dict(breakers)
    states.setdefault(DEFAULT_BREAKER, "closed")
    return MetricsSnapshot(
        ledger=read_ledger(conn, tenant_id, policy, now) if policy is not None else None,
        last_success=last,
        finished_runs={(flow, status): int(n) for flow, status, n in finished},
        stuck_runs=stuck,
        quality_latest=None if latest is None else float(latest),
        quality_window=checks.get("pass", 0) / evaluated if evaluated else None,
        quality_checks=checks,
        breakers=states,
        stale_series=None if checked is None else int(stale),
        staleness_checked_at=None if checked is None else _epoch(checked),
        rows={
            "received": int(received),
            "loaded": int(loaded),
            "quarantined": int(quarantined),
            "skipped": int(skipped),
        },
        outbox_pending=int(pending),
        outbox_oldest_age_s=max(0.0, float(oldest_age)) if oldest_age is not None else 0.0,
    )


def _gauge(name: str, doc: str, value: float | None, unit: str = "") -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=value, unit=unit)


_F = TypeVar("_F", CounterMetricFamily, GaugeMetricFamily)


def _labelled(family: _F, values: Mapping[str, float]) -> _F:
    """Adds one sample per label value, in label order (stable output for scrapes and tests)."""
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


def ledger_families(reading: LedgerReading) -> Iterator[Metric]:
    yield _labelled(
        CounterMetricFamily("eia_requests", "EIA API requests sent, by HTTP status class.", labels=["status_class"]),
        reading.requests_by_class,
    )
    yield _labelled(
        CounterMetricFamily("eia_errors", "EIA API requests that ended in an error, by error kind.", labels=["kind"]),
        reading.errors_by_kind,
    )
    yield CounterMetricFamily(
        "eia_retries", "EIA API requests that were retries of an earlier attempt.", value=reading.retries
    )
    yield CounterMetricFamily("eia_response_bytes", "Bytes received from the EIA API.", value=reading.response_bytes)
    buckets = [(_le(bound), count) for bound, count in reading.duration_buckets]
    if not buckets or buckets[-1][0] != "+Inf":
        buckets.append(("+Inf", reading.duration_count))
    yield HistogramMetricFamily(
        "eia_request_duration_seconds",
        "EIA API request duration (one HTTP exchange, including the body).",
        buckets=buckets,
        sum_value=reading.duration_sum_s,
    )
    yield GaugeMetricFamily(
        "eia_requests_today", "EIA API requests sent since 00:00 UTC today.", value=reading.requests_today
    )
    yield GaugeMetricFamily(
        "eia_requests_this_hour",
        "EIA API requests sent since the start of this UTC hour.",
        value=reading.requests_this_hour,
    )
    yield _labelled(
        GaugeMetricFamily(
            "eia_quota_used",
            "EIA API requests counted against the quota window (after quota resets).",
            labels=["window"],
        ),
        reading.quota_used,
    )
    yield _labelled(
        GaugeMetricFamily("eia_quota_remaining", "EIA API requests left in the quota window.", labels=["window"]),
        reading.quota_remaining,
    )
    yield _labelled(
        GaugeMetricFamily("eia_quota_limit", "The configured EIA API request quota per window.", labels=["window"]),
        reading.quota_limit,
    )
    yield GaugeMetricFamily(
        "eia_throttle_global_rate",
        "Requests/s all workers together may send now: min(base, quota spread) times the shared back-off factor.",
        value=reading.throttle_global_rate,
    )
    yield _labelled(
        GaugeMetricFamily(
            "eia_throttle_worker_share",
            "Requests/s each live worker allows itself: its share of eia_throttle_global_rate.",
            labels=["worker"],
        ),
        reading.throttle_worker_share,
    )
    yield GaugeMetricFamily(
        "eia_cost_usd",
        "Charge-back cost of EIA requests this month (UTC) so far, in USD.",
        value=reading.cost_usd_month,
    )
    yield from _gauge(
        "eia_cost_projected_usd",
        "Projected charge-back cost at the end of this month, in USD.",
        reading.cost_projected_usd,
    )
    yield from _gauge("eia_budget_usd", "The configured monthly budget, in USD.", reading.budget_usd)
    yield from _gauge(
        "eia_budget_used_ratio", "Share of the budget used (the cost policy's own measure).", reading.budget_used_ratio
    )


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else format(bound, "g")


def families(snapshot: MetricsSnapshot) -> Iterator[Metric]:
    """The metric families of one snapshot (pure)."""
    if snapshot.ledger is not None:
        yield from ledger_families(snapshot.ledger)
    # No sample for a flow that never succeeded: 0 would read as "56 years ago" to `time() - x` (alerts,
    # dashboards). The alert rules say "never ran" with absent(); the dashboard shows "never".
    yield _labelled(
        GaugeMetricFamily(
            "eia_last_ingestion_timestamp_seconds",
            "End of the newest successful run per ingestion flow (unix time; no sample until its first success).",
            labels=["flow"],
        ),
        {flow: ended for flow, ended in snapshot.last_success.items() if ended > 0},
    )
    runs = CounterMetricFamily(
        "eia_flow_runs_finished", "Flow runs that finished, by flow and final status.", labels=["flow", "status"]
    )
    for (flow, status), n in sorted(snapshot.finished_runs.items()):
        runs.add_metric([flow, status], n)
    yield runs
    yield _labelled(
        GaugeMetricFamily(
            "eia_flow_runs_stuck",
            "Runs still 'running' far longer than their flow should take (killed pods).",
            labels=["flow"],
        ),
        snapshot.stuck_runs,
    )
    quality = GaugeMetricFamily(
        "eia_quality_score",
        "Quality-gate score: latest batch, and checks passed / evaluated over 24 h.",
        labels=["window"],
    )
    if snapshot.quality_latest is not None:
        quality.add_metric(["latest"], snapshot.quality_latest)
    if snapshot.quality_window is not None:
        quality.add_metric(["24h"], snapshot.quality_window)
    yield quality
    checks = GaugeMetricFamily(
        "eia_quality_checks", "Quality-gate check outcomes over the last 24 h.", labels=["outcome"]
    )
    for outcome in ("pass", "warn", "fail", "error"):
        checks.add_metric([outcome], snapshot.quality_checks.get(outcome, 0))
    yield checks
    breaker = GaugeMetricFamily(
        "eia_circuit_breaker_state", "EIA circuit breaker state: 0 closed, 1 half-open, 2 open.", labels=["breaker"]
    )
    for name, state in sorted(snapshot.breakers.items()):
        breaker.add_metric([name], BREAKER_STATES.get(state, 2))
    yield breaker
    if snapshot.stale_series is not None:
        yield GaugeMetricFamily(
            "eia_stale_series", "Catalogued series whose next period is overdue.", value=snapshot.stale_series
        )
    yield from _gauge(
        "eia_staleness_check_timestamp_seconds",
        "When the staleness monitor last ran (unix time).",
        snapshot.staleness_checked_at,
    )
    for key, doc in (
        ("received", "Rows received from EIA by the loaders."),
        ("loaded", "Rows inserted or updated in the observation table."),
        ("quarantined", "Rows moved to quarantine (rejected or blocked by the quality gate)."),
        ("skipped", "Rows skipped because they are past the retention horizon."),
    ):
        yield CounterMetricFamily(f"eia_rows_{key}", doc, value=snapshot.rows.get(key, 0))
    yield GaugeMetricFamily(
        "eia_outbox_pending_messages", "Outbox rows not yet published to Kafka.", value=snapshot.outbox_pending
    )
    yield GaugeMetricFamily(
        "eia_outbox_oldest_age_seconds",
        "Age of the oldest unpublished outbox row (0 if none).",
        value=snapshot.outbox_oldest_age_s,
    )


class EiaCollector(Collector):
    """Reads the durable state on every scrape (one short connection, bounded by timeouts)."""

    def __init__(
        self,
        dsn: str,
        tenant_id: str,
        *,
        thresholds: HealthThresholds | None = None,
        policy: CostPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._dsn = dsn
        self._tenant = tenant_id
        self._thresholds = thresholds
        self._policy = policy
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return []  # no scrape at registration time

    def snapshot(self) -> MetricsSnapshot:
        with psycopg.connect(
            self._dsn,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=f"{APPLICATION_NAME}-metrics",
        ) as conn:
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            return read_snapshot(conn, self._tenant, self._clock(), thresholds=self._thresholds, policy=self._policy)

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        up = 1
        out: list[Metric] = []
        try:
            out = list(families(self.snapshot()))
        except psycopg.Error as exc:
            up = 0
            # Only the host and database: libpq's own text can echo the DSN.
            logger.warning("metrics: database %s unavailable (%s)", describe_dsn(self._dsn), type(exc).__name__)
        yield from out
        yield GaugeMetricFamily("eia_collector_database_up", "1 if the last scrape could read the database.", value=up)
        yield GaugeMetricFamily(
            "eia_collector_scrape_duration_seconds",
            "Time the last scrape spent reading.",
            value=time.perf_counter() - started,
        )
