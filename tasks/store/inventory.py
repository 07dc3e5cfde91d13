"""What is in the database right now: rows per table, quarantine by reason, quality gate outcomes.

`eia demo` ends with this summary, and an operator can read it after any run. It reads only durable
state (the tables, the batch log, the quality results), so it tells the same story as the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from psycopg import sql

from tasks.store.database import connect
from tasks.store.tables import (
    BATCH_LOG,
    CATEGORIES,
    METADATA,
    OUTBOX,
    QUALITY_RESULTS,
    QUARANTINE,
    REVISIONS,
    RUN_LOG,
    TIMESERIES,
)

# The tables a user cares about after a run, in the order a summary lists them.
SUMMARY_TABLES: Final = (
    TIMESERIES,
    QUARANTINE,
    REVISIONS,
    METADATA,
    CATEGORIES,
    RUN_LOG,
    BATCH_LOG,
    QUALITY_RESULTS,
    OUTBOX,
)


@dataclass(slots=True)
class QualitySummary:
    batches: int = 0
    passed: int = 0
    checks: int = 0
    checks_passed: int = 0
    score: float | None = None  # mean batch quality score (0..1); None before any gated batch

    @property
    def pass_rate(self) -> float | None:
        return self.checks_passed / self.checks if self.checks else None

    @property
    def all_passed(self) -> bool:
        return self.batches > 0 and self.passed == self.batches


@dataclass(slots=True)
class Inventory:
    rows: dict[str, int] = field(default_factory=dict)  # table -> row count (missing tables left out)
    series: int = 0
    quarantine: dict[str, int] = field(default_factory=dict)  # reason -> rows
    quality: QualitySummary = field(default_factory=QualitySummary)
    runs: dict[str, str] = field(default_factory=dict)  # flow -> status of its latest run


def read_inventory(dsn: str, tenant_id: str) -> Inventory:
    inventory = Inventory()
    with connect(dsn, autocommit=True) as conn:
        for table in SUMMARY_TABLES:
            exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            if exists is None or exists[0] is None:
                continue
            count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
            inventory.rows[table] = int(count[0]) if count else 0
        series = conn.execute(
            sql.SQL("SELECT count(DISTINCT series_id) FROM {} WHERE tenant_id = %s").format(sql.Identifier(TIMESERIES)),
            (tenant_id,),
        ).fetchone()
        inventory.series = int(series[0]) if series else 0
        inventory.quarantine = {
            str(reason): int(n)
            for reason, n in conn.execute(
                sql.SQL(
                    "SELECT reason, count(*) FROM {} WHERE tenant_id = %s GROUP BY reason ORDER BY 2 DESC, 1"
                ).format(sql.Identifier(QUARANTINE)),
                (tenant_id,),
            ).fetchall()
        }
        batches = conn.execute(
            sql.SQL(
                "SELECT count(*), count(*) FILTER (WHERE gate_passed), avg(quality_score) FROM {} WHERE tenant_id = %s"
            ).format(sql.Identifier(BATCH_LOG)),
            (tenant_id,),
        ).fetchone()
        checks = conn.execute(
            sql.SQL("SELECT count(*), count(*) FILTER (WHERE outcome = 'pass') FROM {} WHERE tenant_id = %s").format(
                sql.Identifier(QUALITY_RESULTS)
            ),
            (tenant_id,),
        ).fetchone()
        if batches is not None and checks is not None:
            inventory.quality = QualitySummary(
                batches=int(batches[0]),
                passed=int(batches[1]),
                checks=int(checks[0]),
                checks_passed=int(checks[1]),
                score=float(batches[2]) if batches[2] is not None else None,
            )
        inventory.runs = {
            str(flow): str(status)
            for flow, status in conn.execute(
                sql.SQL(
                    "SELECT DISTINCT ON (flow_name) flow_name, status FROM {} WHERE tenant_id = %s "
                    "ORDER BY flow_name, started_at DESC"
                ).format(sql.Identifier(RUN_LOG)),
                (tenant_id,),
            ).fetchall()
        }
    return inventory


def outbox_by_topic(dsn: str, *, sent_since: datetime) -> dict[str, tuple[int, int]]:
    """Outbox rows per topic: (sent at or after `sent_since`, still pending), for the topics that have any."""
    with connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT topic, count(*) FILTER (WHERE sent_at >= %s), count(*) FILTER (WHERE sent_at IS NULL) "
                "FROM {} GROUP BY topic ORDER BY topic"
            ).format(sql.Identifier(OUTBOX)),
            (sent_since,),
        ).fetchall()
    return {str(topic): (int(sent), int(pending)) for topic, sent, pending in rows if sent or pending}
