"""Ingestion health: last success per flow, rows loaded, error and retry rates, breaker, stuck runs.

Why it exists: `eia_data_monitoring` (every 30 minutes) and the collector's stuck-run gauge must agree
on what "healthy" means. Flow runs are pods that can be killed mid-run, leaving their run-log row in
`running` forever; a run is *stuck* once it has been running longer than its flow ever should.
Everything here is a pure function of run-log rows, request counts, the breaker state and `now`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from tasks.monitoring.checks import Check, threshold_check
from tasks.monitoring.usage import RequestWindow

# Flow names as the run log records them (tests check them against the flows' own constants).
SERIES_FLOW: Final = "ingest_eia_series_timescale"
BULK_FLOW: Final = "ingest_eia_bulk"
INGESTION_FLOWS: Final = (SERIES_FLOW, BULK_FLOW)

# Runbook staleness alert: 86,400 s for the daily series flow; the bulk flow runs monthly (1st, 03:00).
DEFAULT_MAX_AGE: Final[Mapping[str, timedelta]] = {
    SERIES_FLOW: timedelta(hours=24),
    BULK_FLOW: timedelta(days=33),
}
# Longer than any healthy run of the flow: beyond it, a `running` row is an orphan of a killed pod.
DEFAULT_STUCK_AFTER: Final[Mapping[str, timedelta]] = {
    SERIES_FLOW: timedelta(hours=3),
    BULK_FLOW: timedelta(hours=12),
}
FALLBACK_STUCK_AFTER: Final = timedelta(hours=3)
ERROR_RATE_MAX: Final = 0.05  # runbook: error_rate_threshold_percent 5
RETRY_RATE_MAX: Final = 0.20  # runbook: retry_rate_threshold_percent 20
BREAKER_STATES: Final[Mapping[str, int]] = {"closed": 0, "half-open": 1, "open": 2}


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One eia_run_log row (the columns health needs)."""

    run_id: str
    flow_name: str
    status: str  # running | completed | failed
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class RowCounts:
    """Rows through the gate in a window (from eia_batch_log)."""

    received: int = 0
    loaded: int = 0  # inserted + updated
    quarantined: int = 0


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    max_age: Mapping[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_MAX_AGE))
    stuck_after: Mapping[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_STUCK_AFTER))
    error_rate: float = ERROR_RATE_MAX
    retry_rate: float = RETRY_RATE_MAX

    def stuck_limit(self, flow: str) -> timedelta:
        return self.stuck_after.get(flow, FALLBACK_STUCK_AFTER)


@dataclass(frozen=True, slots=True)
class StuckRun:
    run_id: str
    flow_name: str
    started_at: datetime
    running_for: timedelta


@dataclass(frozen=True, slots=True)
class IngestionHealth:
    now: datetime
    last_success: Mapping[str, datetime | None]  # flow -> end of its newest completed run
    attempted: frozenset[str]  # flows with any run in the log
    rows: RowCounts
    requests: RequestWindow
    breaker_state: str
    stuck: tuple[StuckRun, ...]
    runs_by_status: Mapping[str, int]  # runs started in the window, by status

    def age(self, flow: str) -> timedelta | None:
        last = self.last_success.get(flow)
        return None if last is None else self.now - last


def last_success(runs: Sequence[RunRecord], flows: Sequence[str] = INGESTION_FLOWS) -> dict[str, datetime | None]:
    """End of the newest completed run per flow; every flow in `flows` is present (None if never)."""
    newest: dict[str, datetime | None] = dict.fromkeys(flows)
    for r in runs:
        if r.status != "completed" or r.ended_at is None:
            continue
        current = newest.get(r.flow_name)
        if current is None or r.ended_at > current:
            newest[r.flow_name] = r.ended_at
    return newest


def stuck_runs(runs: Sequence[RunRecord], now: datetime, thresholds: HealthThresholds) -> list[StuckRun]:
    """Runs still `running` past their flow's limit, longest first."""
    stuck = [
        StuckRun(r.run_id, r.flow_name, r.started_at, now - r.started_at)
        for r in runs
        if r.status == "running" and now - r.started_at > thresholds.stuck_limit(r.flow_name)
    ]
    return sorted(stuck, key=lambda s: (-s.running_for.total_seconds(), s.run_id))


def assess_health(
    runs: Sequence[RunRecord],
    rows: RowCounts,
    requests: RequestWindow,
    breaker_state: str,
    now: datetime,
    *,
    thresholds: HealthThresholds | None = None,
    window: timedelta = timedelta(hours=24),
) -> IngestionHealth:
    limits = thresholds or HealthThresholds()
    by_status: dict[str, int] = {}
    for r in runs:
        if r.started_at >= now - window:
            by_status[r.status] = by_status.get(r.status, 0) + 1
    return IngestionHealth(
        now=now,
        last_success=last_success(runs, tuple(dict.fromkeys([*INGESTION_FLOWS, *limits.max_age]))),
        attempted=frozenset(r.flow_name for r in runs),
        rows=rows,
        requests=requests,
        breaker_state=breaker_state,
        stuck=tuple(stuck_runs(runs, now, limits)),
        runs_by_status=by_status,
    )


def health_checks(health: IngestionHealth, thresholds: HealthThresholds | None = None) -> list[Check]:
    """The checks `eia_data_monitoring` reports and alerts on."""
    limits = thresholds or HealthThresholds()
    checks: list[Check] = []
    for flow, max_age in limits.max_age.items():
        age = health.age(flow)
        hours = None if age is None else age.total_seconds() / 3600
        never = age is None and flow in health.attempted
        breached = never or (age is not None and age > max_age)
        message = (
            f"{flow} has never completed a run"
            if never
            else f"{flow} has not completed a run yet"
            if age is None
            else f"last successful {flow} run ended {hours:.1f} h ago (limit {max_age.total_seconds() / 3600:g} h)"
        )
        checks.append(
            Check(f"ingestion_age:{flow}", breached, "critical", hours, max_age.total_seconds() / 3600, message)
        )
    r = health.requests
    checks.append(
        threshold_check(
            "error_rate",
            r.error_rate,
            limits.error_rate,
            above=True,
            severity="critical",
            message=f"EIA error rate {_pct(r.error_rate)} over {r.requests} requests (limit {limits.error_rate:.0%})",
        )
    )
    checks.append(
        threshold_check(
            "retry_rate",
            r.retry_rate,
            limits.retry_rate,
            above=True,
            severity="warning",
            message=f"EIA retry rate {_pct(r.retry_rate)} over {r.requests} requests (limit {limits.retry_rate:.0%})",
        )
    )
    state = BREAKER_STATES.get(health.breaker_state, 2)
    checks.append(
        Check(
            "breaker_open",
            health.breaker_state == "open",
            "critical",
            float(state),
            2.0,
            f"circuit breaker is {health.breaker_state}",
        )
    )
    checks.append(
        Check(
            "stuck_runs",
            bool(health.stuck),
            "critical",
            float(len(health.stuck)),
            0.0,
            f"{len(health.stuck)} run(s) stuck in running: "
            + (
                ", ".join(
                    f"{s.flow_name} {s.run_id} ({s.running_for.total_seconds() / 3600:.1f} h)" for s in health.stuck
                )
                or "none"
            ),
            {"runs": [s.run_id for s in health.stuck]},
        )
    )
    return checks


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def markdown_report(health: IngestionHealth, checks: Sequence[Check]) -> str:
    """The `eia_data_monitoring` artifact: verdicts first, then the numbers behind them."""
    breached = [c for c in checks if c.breached]
    r = health.requests
    lines = [
        "# EIA ingestion health",
        "",
        f"**As of:** {health.now:%Y-%m-%d %H:%M} UTC  ",
        f"**Result:** {'healthy' if not breached else f'{len(breached)} check(s) breached'}  ",
        f"**Circuit breaker:** {health.breaker_state}  ",
        f"**Observations (24 h):** {health.rows.received} received, {health.rows.loaded} loaded, "
        f"{health.rows.quarantined} quarantined  ",
        f"**EIA requests (24 h):** {r.requests} ({r.errors} errors, {r.retries} retries)",
        "",
        "| check | state | value | threshold | message |",
        "|---|---|---:|---:|---|",
    ]
    for c in checks:
        value = "-" if c.value is None else f"{c.value:.4g}"
        threshold = "-" if c.threshold is None else f"{c.threshold:.4g}"
        lines.append(f"| {c.name} | {c.state} | {value} | {threshold} | {c.message} |")
    lines += ["", "| flow | last successful run ended (UTC) |", "|---|---|"]
    for flow, ended in sorted(health.last_success.items()):
        lines.append(f"| {flow} | {'never' if ended is None else f'{ended:%Y-%m-%d %H:%M:%S}'} |")
    return "\n".join(lines) + "\n"


def table_rows(checks: Sequence[Check]) -> list[dict[str, object]]:
    return [
        {
            "check": c.name,
            "state": c.state,
            "severity": c.severity,
            "value": c.value,
            "threshold": c.threshold,
            "message": c.message,
        }
        for c in checks
    ]
