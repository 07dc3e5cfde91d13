"""Read-only views of quality: what sits in quarantine, and how each check has been doing.

Why it exists: operators ask two questions before and after a fix: "which rows are quarantined, and
why?" (`eia quarantine list`) and "what did each check say lately?" (`eia quality report`). Both
answers are plain queries over `eia_series_quarantine` and `eia_quality_results`, kept here so the
CLI stays free of SQL and the pass rate means what the gate and the monitor mean by it: passed
checks divided by evaluated checks (a warning or an error is not a pass).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow

from tasks.quality.rules import RULES
from tasks.store.tables import QUALITY_RESULTS, QUARANTINE

DEFAULT_LIMIT: Final = 50
# The quality report's pass rate covers the checks of this many most recent gated batches.
DEFAULT_BATCHES: Final = 100


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One quarantined row, without its payload (the original input, kept for replays)."""

    id: int
    tenant_id: str
    series_id: str | None
    raw_period: str | None
    raw_value: str | None
    reason: str
    detail: str | None
    source: str
    dataset: str | None
    batch_id: str
    quarantined_at: datetime

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["quarantined_at"] = self.quarantined_at.isoformat()
        return data


def _filters(reason: str | None, series: str | None, tenant_id: str | None) -> tuple[str, dict[str, Any]]:
    clauses, params = ["TRUE"], {"reason": reason, "series": series, "tenant": tenant_id}
    if reason is not None:
        clauses.append("q.reason = %(reason)s")
    if series is not None:
        clauses.append("q.series_id = %(series)s")
    if tenant_id is not None:
        clauses.append("q.tenant_id = %(tenant)s")
    return " AND ".join(clauses), params


def list_quarantine(
    conn: psycopg.Connection[TupleRow],
    *,
    reason: str | None = None,
    series: str | None = None,
    tenant_id: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[QuarantineEntry]:
    """Quarantined rows matching every given filter, newest first, at most `limit` of them."""
    where, params = _filters(reason, series, tenant_id)
    rows = conn.execute(
        f"""SELECT q.id, q.tenant_id, q.series_id, q.raw_period, q.raw_value, q.reason, q.detail, q.source,
                q.dataset, q.ingest_batch_id, q.quarantined_at
            FROM {QUARANTINE} q WHERE {where} ORDER BY q.id DESC LIMIT %(limit)s""",
        {**params, "limit": max(0, int(limit))},
    ).fetchall()
    return [QuarantineEntry(*row) for row in rows]


def quarantine_counts(
    conn: psycopg.Connection[TupleRow],
    *,
    reason: str | None = None,
    series: str | None = None,
    tenant_id: str | None = None,
) -> dict[str, int]:
    """Quarantined rows per reason, for the rows matching every given filter (largest first)."""
    where, params = _filters(reason, series, tenant_id)
    rows = conn.execute(
        f"SELECT q.reason, count(*) FROM {QUARANTINE} q WHERE {where} GROUP BY q.reason ORDER BY 2 DESC, 1",
        params,
    ).fetchall()
    return {str(r): int(n) for r, n in rows}


@dataclass(frozen=True, slots=True)
class CheckReport:
    """A check's latest result and its pass rate over the recent batches."""

    name: str
    severity: str
    kind: str
    outcome: str | None  # None: the check has no result among the recent batches
    measured: float | None
    threshold: float | None
    checked_at: datetime | None
    batch_id: str | None
    evaluated: int  # results of this check among the recent batches
    passed: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.evaluated if self.evaluated else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checked_at"] = self.checked_at.isoformat() if self.checked_at else None
        data["pass_rate"] = self.pass_rate
        return data


def quality_report(
    conn: psycopg.Connection[TupleRow], *, tenant_id: str | None = None, batches: int = DEFAULT_BATCHES
) -> list[CheckReport]:
    """Every rule of the registry, in registry order, with its latest result and its pass rate over
    the `batches` most recently checked batches (of `tenant_id`, when given)."""
    rows = conn.execute(
        f"""WITH recent AS (
                SELECT r.batch_id FROM {QUALITY_RESULTS} r
                WHERE %(tenant)s::text IS NULL OR r.tenant_id = %(tenant)s
                GROUP BY r.batch_id ORDER BY max(r.checked_at) DESC, max(r.id) DESC LIMIT %(batches)s
            ), results AS (
                SELECT r.* FROM {QUALITY_RESULTS} r JOIN recent USING (batch_id)
            ), latest AS (
                SELECT DISTINCT ON (r.check_name) r.check_name, r.outcome, r.measured_value, r.threshold,
                    r.checked_at, r.batch_id
                FROM results r ORDER BY r.check_name, r.checked_at DESC, r.id DESC
            )
            SELECT l.check_name, l.outcome, l.measured_value, l.threshold, l.checked_at, l.batch_id,
                s.evaluated, s.passed
            FROM latest l JOIN (
                SELECT r.check_name, count(*) AS evaluated, count(*) FILTER (WHERE r.outcome = 'pass') AS passed
                FROM results r GROUP BY r.check_name
            ) s USING (check_name)""",
        {"tenant": tenant_id, "batches": max(1, int(batches))},
    ).fetchall()
    by_name = {str(row[0]): row for row in rows}
    report = []
    for r in RULES:
        row = by_name.get(r.name)
        if row is None:
            report.append(CheckReport(r.name, r.severity, r.kind, None, None, None, None, None, 0, 0))
            continue
        _, outcome, measured, threshold, checked_at, batch_id, evaluated, passed = row
        report.append(
            CheckReport(
                r.name,
                r.severity,
                r.kind,
                str(outcome),
                None if measured is None else float(measured),
                None if threshold is None else float(threshold),
                checked_at,
                str(batch_id),
                int(evaluated),
                int(passed),
            )
        )
    return report
