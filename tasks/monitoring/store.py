"""The monitoring's database side: read the durable state the monitors judge, write what they found.

Why it exists: the computations in this package are pure; this module is the only place monitoring
talks to PostgreSQL. It reads the run log, batch log, quality results and the observation table's
per-series extents with `select()` over the models (`tasks.store.models`), and keeps the staleness
snapshot and each check's state (`0005_monitoring.sql`) with SQL: a snapshot replaced in one
transaction, an upsert that remembers when a check last changed, and the completeness count joined
to the windows passed as arrays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from sqlalchemy import or_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlmodel import col, func, select

from tasks.monitoring.checks import Check, Transition, transitions
from tasks.monitoring.health import RowCounts, RunRecord
from tasks.monitoring.quality import BatchResult, CheckResult
from tasks.monitoring.staleness import CompletenessWindow, SeriesExtent, StalenessReport
from tasks.store.models import BatchLog, MonitorCheck, QualityResult, RunLog, SeriesObservation
from tasks.store.sessions import borrowed, rows, total
from tasks.store.tables import MONITOR_CHECKS, SERIES_STALENESS, TIMESERIES

Conn = psycopg.Connection[TupleRow]


def read_runs(conn: Conn, tenant_id: str, since: datetime) -> list[RunRecord]:
    """Runs started since `since`, every run still `running`, and each flow's newest completed run."""
    r = RunLog
    newest_completed = (
        select(r.run_id)
        .where(r.tenant_id == tenant_id, r.status == "completed", col(r.ended_at).is_not(None))
        .ext(distinct_on(col(r.flow_name)))
        .order_by(col(r.flow_name), col(r.ended_at).desc())
    )
    query = sa_select(col(r.run_id), col(r.flow_name), col(r.status), col(r.started_at), col(r.ended_at)).where(
        col(r.tenant_id) == tenant_id,
        or_(col(r.started_at) >= since, col(r.status) == "running", col(r.run_id).in_(newest_completed)),
    )
    with borrowed(conn) as session:
        return [RunRecord(*row) for row in rows(session, query)]


def read_row_counts(conn: Conn, tenant_id: str, since: datetime) -> RowCounts:
    b = BatchLog
    query = select(total(b.received), total(b.inserted, b.updated), total(b.quarantined)).where(
        b.tenant_id == tenant_id, col(b.created_at) >= since
    )
    with borrowed(conn) as session:
        received, loaded, quarantined = session.exec(query).one()
    return RowCounts(int(received), int(loaded), int(quarantined))


def read_quality(conn: Conn, tenant_id: str, since: datetime) -> tuple[list[CheckResult], list[BatchResult]]:
    q, b = QualityResult, BatchLog
    checks = sa_select(col(q.batch_id), col(q.check_name), col(q.severity), col(q.outcome), col(q.checked_at)).where(
        col(q.tenant_id) == tenant_id, col(q.checked_at) >= since
    )
    batches = select(b.batch_id, b.created_at, b.gate_passed, b.quality_score).where(
        b.tenant_id == tenant_id, col(b.created_at) >= since
    )
    with borrowed(conn) as session:
        return (
            [CheckResult(*row) for row in rows(session, checks)],
            [BatchResult(*row) for row in session.exec(batches).all()],
        )


def read_series_extents(conn: Conn, tenant_id: str) -> list[SeriesExtent]:
    """Oldest and newest period of every series in the observation table (one grouped scan)."""
    t = SeriesObservation
    query = (
        sa_select(col(t.series_id), col(t.frequency), col(t.dataset), func.max(t.period), func.min(t.period))
        .where(col(t.tenant_id) == tenant_id)
        .group_by(col(t.series_id), col(t.frequency), col(t.dataset))
        .order_by(col(t.series_id))
    )
    with borrowed(conn) as session:
        return [SeriesExtent(*row) for row in rows(session, query)]


def count_received(conn: Conn, tenant_id: str, windows: Sequence[CompletenessWindow]) -> dict[str, int]:
    """Periods present per series inside its completeness window (the primary key makes them distinct)."""
    if not windows:
        return {}
    counted = conn.execute(
        f"""SELECT w.series_id, count(t.period)
            FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(series_id, first_p, last_p)
            LEFT JOIN {TIMESERIES} t ON t.tenant_id = %s AND t.series_id = w.series_id
                AND t.period >= w.first_p AND t.period <= w.last_p
            GROUP BY w.series_id""",
        ([w.series_id for w in windows], [w.first for w in windows], [w.last for w in windows], tenant_id),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in counted}


def save_staleness(conn: Conn, tenant_id: str, report: StalenessReport) -> None:
    """Replaces the tenant's staleness snapshot with this report, in one transaction."""
    with conn.transaction():
        conn.execute(f"DELETE FROM {SERIES_STALENESS} WHERE tenant_id = %s", (tenant_id,))
        with conn.cursor() as cur:
            cur.executemany(
                f"""INSERT INTO {SERIES_STALENESS} (tenant_id, series_id, entry_id, frequency, newest_period,
                        next_period, due_at, lateness_seconds, stale, checked_at)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                [
                    (
                        tenant_id,
                        s.series_id,
                        s.entry_id,
                        s.frequency,
                        s.newest_period,
                        s.next_period,
                        s.due_at,
                        s.lateness.total_seconds(),
                        s.stale,
                        report.checked_at,
                    )
                    for s in report.items
                ],
            )


def save_checks(conn: Conn, tenant_id: str, monitor: str, checks: Sequence[Check], now: datetime) -> list[Transition]:
    """Stores each check's state and returns the ones that crossed their threshold since the last run.

    The rows are locked while compared, so two overlapping runs of one monitor report a crossing once.
    """
    with conn.transaction():
        rows = conn.execute(
            f"SELECT check_name, state FROM {MONITOR_CHECKS} WHERE tenant_id = %s AND monitor = %s FOR UPDATE",
            (tenant_id, monitor),
        ).fetchall()
        previous: Mapping[str, str] = {str(r[0]): str(r[1]) for r in rows}
        changes = transitions(previous, checks)
        changed = {t.check.name for t in changes}
        with conn.cursor() as cur:
            cur.executemany(
                f"""INSERT INTO {MONITOR_CHECKS} (tenant_id, monitor, check_name, state, severity, value, threshold,
                        message, details, changed_at, checked_at)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)
                    ON CONFLICT (tenant_id, monitor, check_name) DO UPDATE SET state = excluded.state,
                        severity = excluded.severity, value = excluded.value, threshold = excluded.threshold,
                        message = excluded.message, details = excluded.details, checked_at = excluded.checked_at,
                        changed_at = CASE WHEN %s THEN excluded.changed_at ELSE {MONITOR_CHECKS}.changed_at END""",
                [
                    (
                        tenant_id,
                        monitor,
                        c.name,
                        c.state,
                        c.severity,
                        c.value,
                        c.threshold,
                        c.message,
                        json.dumps(dict(c.details), default=str),
                        now,
                        now,
                        c.name in changed or c.name not in previous,
                    )
                    for c in checks
                ],
            )
    return changes


def read_checks(conn: Conn, tenant_id: str, monitor: str | None = None) -> list[dict[str, Any]]:
    """Stored check states (for reports and tests)."""
    m = MonitorCheck
    query = select(m).where(m.tenant_id == tenant_id).order_by(col(m.monitor), col(m.check_name))
    if monitor is not None:
        query = query.where(m.monitor == monitor)
    with borrowed(conn) as session:
        return [
            {
                "monitor": c.monitor,
                "check": c.check_name,
                "state": c.state,
                "severity": c.severity,
                "value": c.value,
                "threshold": c.threshold,
                "message": c.message,
                "changed_at": c.changed_at,
                "checked_at": c.checked_at,
            }
            for c in session.exec(query).all()
        ]
