"""The monitoring SQL: read the durable state the monitors judge, write what they found.

Why it exists: the computations in this package are pure; this module is the only place monitoring
talks to PostgreSQL. It reads the run log, batch log, quality results, breaker row and the
observation table's per-series extents, and keeps the staleness snapshot and each check's state
(`0005_monitoring.sql`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from tasks.monitoring.checks import Check, Transition, transitions
from tasks.monitoring.health import RowCounts, RunRecord
from tasks.monitoring.quality import BatchResult, CheckResult
from tasks.monitoring.staleness import CompletenessWindow, SeriesExtent, StalenessReport
from tasks.store.tables import (
    BATCH_LOG,
    MONITOR_CHECKS,
    QUALITY_RESULTS,
    RUN_LOG,
    SERIES_STALENESS,
    TIMESERIES,
)

Conn = psycopg.Connection[TupleRow]


def read_runs(conn: Conn, tenant_id: str, since: datetime) -> list[RunRecord]:
    """Runs started since `since`, every run still `running`, and each flow's newest completed run."""
    rows = conn.execute(
        f"""SELECT run_id, flow_name, status, started_at, ended_at FROM {RUN_LOG}
            WHERE tenant_id = %(t)s AND (started_at >= %(since)s OR status = 'running')
            UNION
            SELECT * FROM (
                SELECT DISTINCT ON (flow_name) run_id, flow_name, status, started_at, ended_at FROM {RUN_LOG}
                WHERE tenant_id = %(t)s AND status = 'completed' AND ended_at IS NOT NULL
                ORDER BY flow_name, ended_at DESC) newest""",
        {"t": tenant_id, "since": since},
    ).fetchall()
    return [RunRecord(str(r[0]), str(r[1]), str(r[2]), r[3], r[4]) for r in rows]


def read_row_counts(conn: Conn, tenant_id: str, since: datetime) -> RowCounts:
    row = conn.execute(
        f"""SELECT coalesce(sum(received), 0), coalesce(sum(inserted + updated), 0), coalesce(sum(quarantined), 0)
            FROM {BATCH_LOG} WHERE tenant_id = %s AND created_at >= %s""",
        (tenant_id, since),
    ).fetchone()
    assert row is not None
    return RowCounts(int(row[0]), int(row[1]), int(row[2]))


def read_quality(conn: Conn, tenant_id: str, since: datetime) -> tuple[list[CheckResult], list[BatchResult]]:
    checks = conn.execute(
        f"""SELECT batch_id, check_name, severity, outcome, checked_at FROM {QUALITY_RESULTS}
            WHERE tenant_id = %s AND checked_at >= %s""",
        (tenant_id, since),
    ).fetchall()
    batches = conn.execute(
        f"""SELECT batch_id, created_at, gate_passed, quality_score FROM {BATCH_LOG}
            WHERE tenant_id = %s AND created_at >= %s""",
        (tenant_id, since),
    ).fetchall()
    return (
        [CheckResult(str(c[0]), str(c[1]), str(c[2]), str(c[3]), c[4]) for c in checks],
        [BatchResult(str(b[0]), b[1], bool(b[2]), None if b[3] is None else float(b[3])) for b in batches],
    )


def read_series_extents(conn: Conn, tenant_id: str) -> list[SeriesExtent]:
    """Oldest and newest period of every series in the observation table (one grouped scan)."""
    rows = conn.execute(
        f"""SELECT series_id, frequency, dataset, max(period), min(period) FROM {TIMESERIES}
            WHERE tenant_id = %s GROUP BY series_id, frequency, dataset ORDER BY series_id""",
        (tenant_id,),
    ).fetchall()
    return [SeriesExtent(str(r[0]), str(r[1]), r[2], r[3], r[4]) for r in rows]


def count_received(conn: Conn, tenant_id: str, windows: Sequence[CompletenessWindow]) -> dict[str, int]:
    """Periods present per series inside its completeness window (the primary key makes them distinct)."""
    if not windows:
        return {}
    rows = conn.execute(
        f"""SELECT w.series_id, count(t.period)
            FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(series_id, first_p, last_p)
            LEFT JOIN {TIMESERIES} t ON t.tenant_id = %s AND t.series_id = w.series_id
                AND t.period >= w.first_p AND t.period <= w.last_p
            GROUP BY w.series_id""",
        ([w.series_id for w in windows], [w.first for w in windows], [w.last for w in windows], tenant_id),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


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
    rows = conn.execute(
        f"""SELECT monitor, check_name, state, severity, value, threshold, message, changed_at, checked_at
            FROM {MONITOR_CHECKS} WHERE tenant_id = %s AND (%s::text IS NULL OR monitor = %s)
            ORDER BY monitor, check_name""",
        (tenant_id, monitor, monitor),
    ).fetchall()
    keys = ("monitor", "check", "state", "severity", "value", "threshold", "message", "changed_at", "checked_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]
