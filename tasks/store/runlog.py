"""The run log and batch log: durable counts per flow run and per batch.

Metrics and monitoring read these tables, not process memory, so the numbers survive pod
restarts and add up across workers. Counts reconcile:
received = inserted + updated + unchanged + quarantined + skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from tasks.store.staging import BatchContext
from tasks.store.tables import BATCH_LOG, RUN_LOG


@dataclass(slots=True)
class Counts:
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    skipped: int = 0

    def add(self, other: Counts) -> None:
        for name in ("received", "inserted", "updated", "unchanged", "quarantined", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def reconciles(self) -> bool:
        return self.received == self.inserted + self.updated + self.unchanged + self.quarantined + self.skipped


@dataclass(slots=True)
class RunSummary:
    run_id: str
    flow_name: str
    tenant_id: str
    counts: Counts = field(default_factory=Counts)
    series: int = 0
    requests: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def start_run(conn: psycopg.Connection[TupleRow], run_id: str, flow_name: str, tenant_id: str) -> None:
    conn.execute(
        f"""INSERT INTO {RUN_LOG} (run_id, flow_name, tenant_id, status) VALUES (%s, %s, %s, 'running')
            ON CONFLICT (run_id) DO UPDATE SET status = 'running', started_at = now(), ended_at = NULL""",
        (run_id, flow_name, tenant_id),
    )


def finish_run(
    conn: psycopg.Connection[TupleRow], summary: RunSummary, *, status: str, message: str | None = None
) -> None:
    c = summary.counts
    conn.execute(
        f"""UPDATE {RUN_LOG} SET status = %s, ended_at = now(), series = %s, received = %s, inserted = %s,
                updated = %s, unchanged = %s, quarantined = %s, skipped = %s, requests = %s, message = %s,
                details = %s::jsonb
            WHERE run_id = %s""",
        (
            status,
            summary.series,
            c.received,
            c.inserted,
            c.updated,
            c.unchanged,
            c.quarantined,
            c.skipped,
            summary.requests,
            message,
            json.dumps(summary.details, default=str),
            summary.run_id,
        ),
    )


def record_batch(
    conn: psycopg.Connection[TupleRow],
    ctx: BatchContext,
    counts: Counts,
    *,
    source: str,
    dataset: str | None,
    gate_passed: bool,
    failed_checks: Sequence[str] = (),
    quality_score: float | None = None,
    quarantined_by_reason: Mapping[str, int] | None = None,
    recheck_passed: bool | None = None,
    blocked_reason: str | None = None,
) -> None:
    """One batch's line: `gate_passed` means it merged (not blocked); `recheck_passed` is the contract's
    second verdict on what remained after offending rows were set aside (None: none were)."""
    conn.execute(
        f"""INSERT INTO {BATCH_LOG} (batch_id, run_id, tenant_id, source, dataset, received, inserted, updated,
                unchanged, quarantined, skipped, gate_passed, failed_checks, quality_score, quarantined_by_reason,
                recheck_passed, blocked_reason)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)""",
        (
            ctx.batch_id,
            ctx.run_id,
            ctx.tenant_id,
            source,
            dataset,
            counts.received,
            counts.inserted,
            counts.updated,
            counts.unchanged,
            counts.quarantined,
            counts.skipped,
            gate_passed,
            list(failed_checks),
            quality_score,
            json.dumps(dict(quarantined_by_reason or {})),
            recheck_passed,
            blocked_reason,
        ),
    )


def counts_dict(counts: Counts) -> dict[str, int]:
    return asdict(counts)
