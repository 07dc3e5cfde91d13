"""The runbook's SLAs and KPIs: each one's value, target and verdict, and the daily report's text.

Why it exists: `eia_data_monitoring_daily` publishes one report a day covering every SLA and KPI
of the runbook ("SLA & KPIs"). Each objective is defined here once, computed from plain inputs the
flow gathers (per-series lateness and completeness, ledger request counts, gate results, spend), so
the report is testable from a fixture history with known answers. An objective without data (no
requests in the window, no budget configured) is reported as "no data", never as a pass.

Definitions:
- Data freshness: 95th percentile (nearest rank) over catalogued series of how late each series' next
  period is (0 when on time), in hours; target < 24 h.
- API availability: share of EIA requests not failing for EIA-side reasons (5xx, timeouts, connection
  errors); target >= 99.9 %.
- Data quality: checks passed / checks evaluated by the quality gate in the window; target > 95 %.
- Cost control: projected month-end spend / monthly budget; target <= 110 % ("within 10 % of budget").
- Request success rate: requests answered 2xx / requests; target > 98 %.
- Average response time: mean request duration; target < 10 s.
- Data completeness: mean over series of received periods / expected periods, from each series' first
  period to the newest one due by now; target > 99 %.
- Cost efficiency: charge-back cost per 1,000 *successful* requests (failures and retries are paid
  for but wasted); target <= 0.005 USD. The runbook writes "< 0.005", which a configured rate of
  exactly 0.005 USD could never meet, so the target is inclusive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from tasks.monitoring.checks import Check
from tasks.monitoring.staleness import SeriesCompleteness, overall_completeness
from tasks.monitoring.usage import RequestWindow

Kind = Literal["SLA", "KPI"]
Comparison = Literal["<", "<=", ">", ">="]
Verdict = Literal["pass", "fail", "no data"]

FRESHNESS_P95_HOURS: Final = 24.0
AVAILABILITY_MIN: Final = 0.999
QUALITY_PASS_RATE_MIN: Final = 0.95
BUDGET_RATIO_MAX: Final = 1.10
SUCCESS_RATE_MIN: Final = 0.98
MEAN_RESPONSE_MAX_S: Final = 10.0
COMPLETENESS_MIN: Final = 0.99
COST_PER_1000_MAX_USD: Final = 0.005


@dataclass(frozen=True, slots=True)
class SlaInputs:
    window_start: datetime
    window_end: datetime
    lateness_hours: Sequence[float]  # one per catalogued series (0 when fresh)
    requests: RequestWindow
    quality_checks_evaluated: int
    quality_checks_passed: int
    completeness: Sequence[SeriesCompleteness]
    projected_month_usd: float | None
    monthly_budget_usd: float | None
    cost_per_1000_requests_usd: float | None


@dataclass(frozen=True, slots=True)
class Objective:
    kind: Kind
    name: str
    value: float | None
    comparison: Comparison
    target: float
    unit: str  # "h", "s", "%", "USD"
    definition: str

    @property
    def verdict(self) -> Verdict:
        if self.value is None or math.isnan(self.value):
            return "no data"
        ok = {
            "<": self.value < self.target,
            "<=": self.value <= self.target,
            ">": self.value > self.target,
            ">=": self.value >= self.target,
        }[self.comparison]
        return "pass" if ok else "fail"

    def shown(self, number: float | None) -> str:
        if number is None:
            return "-"
        if self.unit == "%":
            return f"{number * 100:.2f} %"
        if self.unit == "USD":
            return f"{number:.4f} USD"
        return f"{number:.2f} {self.unit}"

    @property
    def value_text(self) -> str:
        return self.shown(self.value)

    @property
    def target_text(self) -> str:
        return f"{self.comparison} {self.shown(self.target)}"


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def evaluate(inputs: SlaInputs) -> list[Objective]:
    """Every runbook SLA, then every KPI, in the runbook's order."""
    r = inputs.requests
    budget_ratio = (
        _ratio(inputs.projected_month_usd, inputs.monthly_budget_usd)
        if inputs.projected_month_usd is not None and inputs.monthly_budget_usd
        else None
    )
    efficiency = (
        inputs.cost_per_1000_requests_usd * r.requests / r.succeeded
        if inputs.cost_per_1000_requests_usd is not None and r.succeeded
        else None
    )
    return [
        Objective(
            "SLA",
            "Data freshness (p95)",
            percentile(inputs.lateness_hours, 0.95),
            "<",
            FRESHNESS_P95_HOURS,
            "h",
            "95th percentile over catalogued series of how late the next period is",
        ),
        Objective(
            "SLA",
            "API availability",
            r.availability,
            ">=",
            AVAILABILITY_MIN,
            "%",
            "EIA requests not failing for EIA-side reasons (5xx, timeouts, connection errors)",
        ),
        Objective(
            "SLA",
            "Data quality (validation pass rate)",
            _ratio(inputs.quality_checks_passed, inputs.quality_checks_evaluated),
            ">",
            QUALITY_PASS_RATE_MIN,
            "%",
            "quality-gate checks passed / checks evaluated",
        ),
        Objective(
            "SLA",
            "Cost control (projected spend / budget)",
            budget_ratio,
            "<=",
            BUDGET_RATIO_MAX,
            "%",
            "projected month-end spend within 10 % of the monthly budget",
        ),
        Objective(
            "KPI",
            "Request success rate",
            r.success_rate,
            ">",
            SUCCESS_RATE_MIN,
            "%",
            "EIA requests answered 2xx / requests",
        ),
        Objective(
            "KPI",
            "Average response time",
            r.mean_duration_s,
            "<",
            MEAN_RESPONSE_MAX_S,
            "s",
            "mean EIA request duration",
        ),
        Objective(
            "KPI",
            "Data completeness",
            overall_completeness(inputs.completeness),
            ">",
            COMPLETENESS_MIN,
            "%",
            "mean over series of received / expected periods",
        ),
        Objective(
            "KPI",
            "Cost efficiency (per 1,000 successful requests)",
            efficiency,
            "<=",
            COST_PER_1000_MAX_USD,
            "USD",
            "charge-back cost per 1,000 requests answered 2xx",
        ),
    ]


def table_rows(objectives: Sequence[Objective]) -> list[dict[str, Any]]:
    return [
        {
            "type": o.kind,
            "objective": o.name,
            "value": o.value_text,
            "target": o.target_text,
            "verdict": o.verdict,
            "definition": o.definition,
        }
        for o in objectives
    ]


def markdown_report(
    inputs: SlaInputs,
    objectives: Sequence[Objective],
    *,
    worst_series: Sequence[SeriesCompleteness] = (),
    late_series: Sequence[tuple[str, float]] = (),
) -> str:
    failed = [o for o in objectives if o.verdict == "fail"]
    headline = "all objectives met" if not failed else f"{len(failed)} objective(s) missed"
    lines = [
        "# EIA pipeline: SLA and KPI report",
        "",
        f"**Window:** {inputs.window_start:%Y-%m-%d %H:%M} to {inputs.window_end:%Y-%m-%d %H:%M} UTC  ",
        f"**Result:** {headline}  ",
        f"**EIA requests in window:** {inputs.requests.requests}",
        "",
        "| type | objective | value | target | verdict |",
        "|---|---|---:|---:|---|",
    ]
    lines += [f"| {o.kind} | {o.name} | {o.value_text} | {o.target_text} | {o.verdict} |" for o in objectives]
    if late_series:
        lines += ["", "## Latest series", "", "| series | late by (h) |", "|---|---:|"]
        lines += [f"| `{sid}` | {hours:.1f} |" for sid, hours in late_series]
    if worst_series:
        lines += [
            "",
            "## Least complete series",
            "",
            "| series | received | expected | completeness |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| `{s.series_id}` | {s.received} | {s.expected} | {s.ratio * 100:.2f} % |" for s in worst_series]
    lines += ["", "Definitions: " + "; ".join(f"**{o.name}**: {o.definition}" for o in objectives) + "."]
    return "\n".join(lines) + "\n"


def sla_checks(objectives: Sequence[Objective]) -> list[Check]:
    """A missed SLA is critical, a missed KPI a warning; "no data" never breaches."""
    return [
        Check(
            f"{o.kind.lower()}:{_slug(o.name)}",
            o.verdict == "fail",
            "critical" if o.kind == "SLA" else "warning",
            o.value,
            o.target,
            f"{o.name}: {o.value_text} (target {o.target_text}): {o.verdict}",
        )
        for o in objectives
    ]


def _slug(name: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())
