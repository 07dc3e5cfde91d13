"""The run log and batch log: durable counts per flow run and per batch.

Metrics and monitoring read these tables, not process memory, so the numbers survive pod
restarts and add up across workers. Counts reconcile:
received = inserted + updated + unchanged + quarantined + skipped.
The count columns of the logs (and of the bulk tables) are named after `Counts`' fields and are
generated from them in field order (`COUNT_FIELDS`), so no statement spells them out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow

from tasks.store.staging import BatchContext
from tasks.store.tables import BATCH_LOG, RUN_LOG


@dataclass(slots=True)
class Counts:
    """Rows by outcome: every received row ends in exactly one of the fields after `received`."""

    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    skipped: int = 0

    @classmethod
    def of(cls, values: Iterable[Any]) -> Counts:
        """Counts from values in `COUNT_FIELDS` order (a row that selected `COUNT_COLUMNS`)."""
        return cls(*(int(v) for v in values))

    def values(self) -> tuple[int, ...]:
        """The counts in `COUNT_FIELDS` order, for the parameters of `COUNT_COLUMNS`."""
        return tuple(getattr(self, name) for name in COUNT_FIELDS)

    def add(self, other: Counts) -> None:
        for name in COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def reconciles(self) -> bool:
        received, *outcomes = self.values()
        return received == sum(outcomes)


COUNT_FIELDS: Final = tuple(f.name for f in fields(Counts))
# SQL: the count columns in field order, and as many parameters.
COUNT_COLUMNS: Final = ", ".join(COUNT_FIELDS)
COUNT_PARAMETERS: Final = ", ".join("%s" for _ in COUNT_FIELDS)


@dataclass(slots=True)
class RunSummary:
    run_id: str
    flow_name: str
    tenant_id: str
    counts: Counts = field(default_factory=Counts)
    series: int = 0
    requests: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def start_run(
    conn: psycopg.Connection[TupleRow],
    run_id: str,
    flow_name: str,
    tenant_id: str,
    *,
    host: str | None = None,
    pid: int | None = None,
) -> None:
    """Opens (or reopens, on a retry) the run's row; `host` and `pid` say where it runs (fanned-out runs)."""
    conn.execute(
        f"""INSERT INTO {RUN_LOG} (run_id, flow_name, tenant_id, status, host, pid)
            VALUES (%s, %s, %s, 'running', %s, %s)
            ON CONFLICT (run_id) DO UPDATE SET status = 'running', started_at = now(), ended_at = NULL,
                host = EXCLUDED.host, pid = EXCLUDED.pid""",
        (run_id, flow_name, tenant_id, host, pid),
    )


def finish_run(
    conn: psycopg.Connection[TupleRow], summary: RunSummary, *, status: str, message: str | None = None
) -> None:
    counts = ", ".join(f"{name} = %s" for name in COUNT_FIELDS)
    conn.execute(
        f"""UPDATE {RUN_LOG} SET status = %s, ended_at = now(), series = %s, {counts}, requests = %s, message = %s,
                details = %s::jsonb
            WHERE run_id = %s""",
        (
            status,
            summary.series,
            *summary.counts.values(),
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
        f"""INSERT INTO {BATCH_LOG} (batch_id, run_id, tenant_id, source, dataset, {COUNT_COLUMNS}, gate_passed,
                failed_checks, quality_score, quarantined_by_reason, recheck_passed, blocked_reason)
            VALUES (%s, %s, %s, %s, %s, {COUNT_PARAMETERS}, %s, %s, %s, %s::jsonb, %s, %s)""",
        (
            ctx.batch_id,
            ctx.run_id,
            ctx.tenant_id,
            source,
            dataset,
            *counts.values(),
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
