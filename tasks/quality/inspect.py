"""Read-only views of quality: what sits in quarantine, and how each check has been doing.

Why it exists: operators ask two questions before and after a fix: "which rows are quarantined, and
why?" (`eia quarantine list`) and "what did each check say lately?" (`eia quality report`). Both
answers are plain selects over the models of `eia_series_quarantine` and `eia_quality_results`
(`tasks.store.models`), kept here so the CLI stays free of queries and the pass rate means what the
gate and the monitor mean by it: passed checks divided by evaluated checks (a warning or an error is
not a pass).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import psycopg
from psycopg.rows import TupleRow

from tasks.quality.rules import RULES

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

# SQLAlchemy, SQLModel and the models are imported by the functions that read: every flow process
# imports this package for the gate, and the ORM would cost each of them ~25 MB and 0.2 s of start-up.

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


def _filters(reason: str | None, series: str | None, tenant_id: str | None) -> list[ColumnElement[bool]]:
    from sqlmodel import col

    from tasks.store.models import QuarantinedRow

    q = QuarantinedRow
    given = ((q.reason, reason), (q.series_id, series), (q.tenant_id, tenant_id))
    return [col(column) == value for column, value in given if value is not None]


def list_quarantine(
    conn: psycopg.Connection[TupleRow],
    *,
    reason: str | None = None,
    series: str | None = None,
    tenant_id: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[QuarantineEntry]:
    """Quarantined rows matching every given filter, newest first, at most `limit` of them."""
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy.orm import defer
    from sqlmodel import col, select

    from tasks.store.models import QuarantinedRow
    from tasks.store.sessions import borrowed

    q = QuarantinedRow
    query = (
        select(q)
        .options(defer(sa_inspect(q).attrs["payload"].class_attribute))  # replays read it, the list does not
        .where(*_filters(reason, series, tenant_id))
        .order_by(col(q.id).desc())
        .limit(max(0, int(limit)))
    )
    with borrowed(conn) as session:
        rows = session.exec(query).all()
        return [
            QuarantineEntry(
                r.id,
                r.tenant_id,
                r.series_id,
                r.raw_period,
                r.raw_value,
                r.reason,
                r.detail,
                r.source,
                r.dataset,
                r.ingest_batch_id,
                r.quarantined_at,
            )
            for r in rows
        ]


def quarantine_counts(
    conn: psycopg.Connection[TupleRow],
    *,
    reason: str | None = None,
    series: str | None = None,
    tenant_id: str | None = None,
) -> dict[str, int]:
    """Quarantined rows per reason, for the rows matching every given filter (largest first)."""
    from sqlmodel import col, func, select

    from tasks.store.models import QuarantinedRow
    from tasks.store.sessions import borrowed

    q = QuarantinedRow
    rows = func.count().label("rows")
    query = (
        select(q.reason, rows)
        .where(*_filters(reason, series, tenant_id))
        .group_by(col(q.reason))
        .order_by(rows.desc(), col(q.reason))
    )
    with borrowed(conn) as session:
        return {str(r): int(n) for r, n in session.exec(query).all()}


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
    from sqlalchemy.dialects.postgresql import distinct_on
    from sqlalchemy.orm import aliased
    from sqlmodel import col, func, select

    from tasks.store.models import QualityResult
    from tasks.store.sessions import borrowed

    r = QualityResult
    recent = select(r.batch_id).where(*([r.tenant_id == tenant_id] if tenant_id is not None else []))
    recent_batches = (
        recent.group_by(col(r.batch_id))
        .order_by(func.max(r.checked_at).desc(), func.max(r.id).desc())
        .limit(max(1, int(batches)))
        .cte("recent")
    )
    # The results of those batches; of each check, the newest one, and how many passed of how many.
    results = aliased(r, select(r).join(recent_batches, col(r.batch_id) == recent_batches.c.batch_id).cte("results"))
    newest = (
        select(results)
        .ext(distinct_on(col(results.check_name)))
        .order_by(col(results.check_name), col(results.checked_at).desc(), col(results.id).desc())
    )
    latest = aliased(r, newest.cte("latest"))
    totals = (
        select(
            results.check_name,
            func.count().label("evaluated"),
            func.count().filter(col(results.outcome) == "pass").label("passed"),
        )
        .group_by(col(results.check_name))
        .subquery("totals")
    )
    query = select(latest, totals.c.evaluated, totals.c.passed).join(
        totals, col(latest.check_name) == totals.c.check_name
    )
    with borrowed(conn) as session:
        by_name = {row[0].check_name: row for row in session.exec(query).all()}
    report = []
    for rule in RULES:
        found = by_name.get(rule.name)
        if found is None:
            report.append(CheckReport(rule.name, rule.severity, rule.kind, None, None, None, None, None, 0, 0))
            continue
        result, evaluated, passed = found
        report.append(
            CheckReport(
                rule.name,
                rule.severity,
                rule.kind,
                result.outcome,
                None if result.measured_value is None else float(result.measured_value),
                None if result.threshold is None else float(result.threshold),
                result.checked_at,
                result.batch_id,
                int(evaluated),
                int(passed),
            )
        )
    return report
