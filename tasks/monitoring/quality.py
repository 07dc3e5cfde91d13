"""The quality score, the check pass rate, their trend and the worst checks, from gate results.

Why it exists: every gated batch writes one row per check to `eia_quality_results` and its score
to `eia_batch_log`. The quality monitor, the daily SLA report and the collector need the same
reading of those rows: pass rate = passed checks / evaluated checks (a warning or an error is not
a pass, as in the gate's own score), score = the mean of the batch scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from tasks.monitoring.checks import Check, threshold_check

SCORE_TARGET: Final = 0.95  # runbook: quality score alert below 0.95, SLA pass rate > 95%
STEADY_BAND: Final = 0.005  # pass-rate changes smaller than half a point are "steady"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One row of eia_quality_results."""

    batch_id: str
    check_name: str
    severity: str
    outcome: str  # pass | fail | warn | error
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One row of eia_batch_log (gated batches have a score)."""

    batch_id: str
    created_at: datetime
    gate_passed: bool
    quality_score: float | None


@dataclass(frozen=True, slots=True)
class CheckStats:
    check_name: str
    evaluated: int
    passed: int
    failed: int  # fail or error
    warned: int

    @property
    def pass_rate(self) -> float:
        return self.passed / self.evaluated if self.evaluated else 1.0


@dataclass(frozen=True, slots=True)
class WindowStats:
    start: datetime
    end: datetime
    checks_evaluated: int
    checks_passed: int
    batches: int
    batches_blocked: int
    score: float | None  # mean batch score; None without scored batches

    @property
    def pass_rate(self) -> float | None:
        return self.checks_passed / self.checks_evaluated if self.checks_evaluated else None


@dataclass(frozen=True, slots=True)
class QualitySummary:
    now: datetime
    current: WindowStats
    previous: WindowStats
    daily: tuple[WindowStats, ...]  # oldest first
    worst: tuple[CheckStats, ...]
    latest_score: float | None

    @property
    def trend(self) -> str:
        """improving | steady | worsening | unknown: pass rate now against the window before."""
        now_rate, before = self.current.pass_rate, self.previous.pass_rate
        if now_rate is None or before is None:
            return "unknown"
        delta = now_rate - before
        if abs(delta) < STEADY_BAND:
            return "steady"
        return "improving" if delta > 0 else "worsening"

    @property
    def delta(self) -> float | None:
        now_rate, before = self.current.pass_rate, self.previous.pass_rate
        return None if now_rate is None or before is None else now_rate - before


def window_stats(
    checks: Sequence[CheckResult], batches: Sequence[BatchResult], start: datetime, end: datetime
) -> WindowStats:
    """Checks and batches with start <= time < end."""
    inside = [c for c in checks if start <= c.checked_at < end]
    scored = [b for b in batches if start <= b.created_at < end]
    scores = [b.quality_score for b in scored if b.quality_score is not None]
    return WindowStats(
        start=start,
        end=end,
        checks_evaluated=len(inside),
        checks_passed=sum(1 for c in inside if c.outcome == "pass"),
        batches=len(scored),
        batches_blocked=sum(1 for b in scored if not b.gate_passed),
        score=sum(scores) / len(scores) if scores else None,
    )


def check_stats(checks: Sequence[CheckResult]) -> list[CheckStats]:
    evaluated: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    warned: Counter[str] = Counter()
    for c in checks:
        evaluated[c.check_name] += 1
        if c.outcome == "pass":
            passed[c.check_name] += 1
        elif c.outcome == "warn":
            warned[c.check_name] += 1
        else:
            failed[c.check_name] += 1
    return [CheckStats(n, evaluated[n], passed[n], failed[n], warned[n]) for n in sorted(evaluated)]


def worst_checks(checks: Sequence[CheckResult], limit: int = 5) -> list[CheckStats]:
    """Checks that did not pass at least once, lowest pass rate first (then most failures, name)."""
    flagged = [s for s in check_stats(checks) if s.passed < s.evaluated]
    flagged.sort(key=lambda s: (s.pass_rate, -(s.failed + s.warned), s.check_name))
    return flagged[:limit]


def summarize(
    checks: Sequence[CheckResult],
    batches: Sequence[BatchResult],
    now: datetime,
    *,
    window: timedelta = timedelta(hours=24),
    days: int = 7,
    worst: int = 5,
) -> QualitySummary:
    """Current window against the one before it, a per-day history and the worst checks of the window."""
    current = window_stats(checks, batches, now - window, now)
    previous = window_stats(checks, batches, now - 2 * window, now - window)
    day = timedelta(days=1)
    daily = tuple(window_stats(checks, batches, now - (i + 1) * day, now - i * day) for i in reversed(range(days)))
    scored = sorted(
        (b for b in batches if b.quality_score is not None and b.created_at <= now), key=lambda b: b.created_at
    )
    in_window = [c for c in checks if now - window <= c.checked_at < now]
    return QualitySummary(
        now=now,
        current=current,
        previous=previous,
        daily=daily,
        worst=tuple(worst_checks(in_window, worst)),
        latest_score=scored[-1].quality_score if scored else None,
    )


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def markdown_report(summary: QualitySummary) -> str:
    """The `eia_quality_monitor` artifact: score, pass rate, trend, per-day history, worst checks."""
    c = summary.current
    delta = "-" if summary.delta is None else f"{summary.delta * 100:+.2f} points"
    lines = [
        "# EIA data quality",
        "",
        f"**As of:** {summary.now:%Y-%m-%d %H:%M} UTC  ",
        f"**Score (mean of batch scores, window):** {_rate(c.score)}  ",
        f"**Latest batch score:** {_rate(summary.latest_score)}  ",
        f"**Check pass rate (window):** {_rate(c.pass_rate)} ({c.checks_passed} of {c.checks_evaluated})  ",
        f"**Batches:** {c.batches} ({c.batches_blocked} blocked)  ",
        f"**Trend against the previous window:** {summary.trend} ({delta})",
        "",
        "| day ending (UTC) | pass rate | score | batches | blocked |",
        "|---|---:|---:|---:|---:|",
    ]
    for d in summary.daily:
        lines.append(
            f"| {d.end:%Y-%m-%d %H:%M} | {_rate(d.pass_rate)} | {_rate(d.score)} | {d.batches} | {d.batches_blocked} |"
        )
    if summary.worst:
        lines += [
            "",
            "## Worst checks",
            "",
            "| check | pass rate | failed | warned | evaluated |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {s.check_name} | {_rate(s.pass_rate)} | {s.failed} | {s.warned} | {s.evaluated} |"
            for s in summary.worst
        ]
    else:
        lines += ["", "Every check passed in the window."]
    return "\n".join(lines) + "\n"


def table_rows(summary: QualitySummary) -> list[dict[str, object]]:
    return [
        {
            "check": s.check_name,
            "pass_rate": round(s.pass_rate, 4),
            "failed": s.failed,
            "warned": s.warned,
            "evaluated": s.evaluated,
        }
        for s in summary.worst
    ]


def quality_checks(summary: QualitySummary, *, score_min: float = SCORE_TARGET, drop_max: float = 0.05) -> list[Check]:
    """The checks `eia_quality_monitor` reports and alerts on (runbook: quality below 95 %)."""
    c = summary.current
    return [
        threshold_check(
            "quality_score",
            c.score,
            score_min,
            above=False,
            severity="warning",
            message=f"mean quality-gate score {_rate(c.score)} over {c.batches} batch(es) (minimum {score_min:.0%})",
        ),
        threshold_check(
            "check_pass_rate",
            c.pass_rate,
            score_min,
            above=False,
            severity="warning",
            message=f"{c.checks_passed} of {c.checks_evaluated} checks passed ({_rate(c.pass_rate)}; "
            f"minimum {score_min:.0%})",
            details={"worst": [s.check_name for s in summary.worst]},
        ),
        threshold_check(
            "pass_rate_drop",
            None if summary.delta is None else -summary.delta,
            drop_max,
            above=True,
            severity="warning",
            message=f"pass rate is {summary.trend} against the previous window "
            f"({'-' if summary.delta is None else f'{summary.delta * 100:+.2f}'} points)",
        ),
        threshold_check(
            "blocked_batches",
            float(c.batches_blocked),
            0,
            above=True,
            severity="warning",
            message=f"{c.batches_blocked} of {c.batches} batch(es) blocked by the quality gate",
        ),
    ]
