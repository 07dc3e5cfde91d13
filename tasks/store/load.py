"""Loading one batch: quarantine rejections → stage (COPY) → quality gate → merge, reconciled.

The staged batch is committed before the gate because Soda reads it over its own connection;
everything after the gate (merge or quarantine, quality results, batch log, removing the staged
rows) is one transaction, so a crash leaves either the whole batch merged or none of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from psycopg.rows import TupleRow

from tasks.normalize.observation import NormalizeResult, Observation
from tasks.ops.runlog import Counts, record_batch
from tasks.quality.gate import GateResult, quarantine_failures, record_results, run_gate
from tasks.store.database import connect, transaction
from tasks.store.merge import ensure_partitions, merge_batch
from tasks.store.quarantine import quarantine_rejections
from tasks.store.staging import BatchContext, drop_staged, stage_observations

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class BatchOutcome:
    batch_id: str
    counts: Counts
    gate: GateResult | None = None
    failed_checks: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failed_checks


@dataclass(frozen=True, slots=True)
class LoadTargets:
    """Where merged and quarantined rows are announced; None topics mean Kafka is off."""

    outbox_topic: str | None
    dlq_topic: str | None
    source: str
    dataset: str | None


def retention_horizon(retention_years: int, now: datetime | None = None) -> datetime | None:
    if retention_years <= 0:
        return None
    now = now or datetime.now(UTC)
    try:
        return now.replace(year=now.year - retention_years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - retention_years, day=28)


def split_retention(observations: Iterable[Observation], horizon: datetime | None) -> tuple[list[Observation], int]:
    """Keeps observations inside the retention horizon; counts the rest (errata §3)."""
    if horizon is None:
        return list(observations), 0
    kept: list[Observation] = []
    skipped = 0
    for obs in observations:
        if obs.period_end <= horizon:
            skipped += 1
        else:
            kept.append(obs)
    return kept, skipped


def load_batch(
    dsn: str,
    ctx: BatchContext,
    result: NormalizeResult,
    targets: LoadTargets,
    *,
    retention_years: int = 0,
    expected_rows: tuple[int, int] | None = None,
    after_merge: Callable[[psycopg.Connection[TupleRow]], None] | None = None,
    after_blocked: Callable[[psycopg.Connection[TupleRow]], None] | None = None,
) -> BatchOutcome:
    """Loads one batch. `after_merge(conn)` runs last inside the merge transaction when the gate did
    not block the batch (merged, or nothing to merge): the bulk flow moves its checkpoint there, so the
    checkpoint commits with the rows or not at all. `after_blocked(conn)` runs last inside the same
    transaction when the gate blocked the batch (its rows quarantined): a quarantine replay removes
    the rows it re-filed there."""
    counts = Counts(received=result.received)
    kept, counts.skipped = split_retention(result.observations, retention_horizon(retention_years))
    with transaction(dsn) as conn:
        staged = stage_observations(conn, ctx, kept)
    gate: GateResult | None = None
    failed: list[str] = []
    try:
        if staged:
            gate = run_gate(dsn, ctx, expected_rows=expected_rows)
            failed = list(gate.failed)
        with transaction(dsn) as conn:
            counts.quarantined += quarantine_rejections(
                conn,
                ctx,
                result.rejections,
                source=targets.source,
                dataset=targets.dataset,
                dlq_topic=targets.dlq_topic,
            )
            if gate is not None:
                record_results(conn, ctx, gate)
            if gate is not None and not gate.passed:
                counts.quarantined += sum(quarantine_failures(conn, ctx, gate, targets.dlq_topic).values())
            elif staged:
                ensure_partitions(conn, ctx.batch_id)
                merged = merge_batch(conn, ctx, outbox_topic=targets.outbox_topic)
                counts.inserted, counts.updated, counts.unchanged = merged.inserted, merged.updated, merged.unchanged
            drop_staged(conn, ctx.batch_id)
            record_batch(
                conn,
                ctx,
                counts,
                source=targets.source,
                dataset=targets.dataset,
                gate_passed=not failed,
                failed_checks=failed,
                quality_score=gate.score if gate else None,
            )
            if after_merge is not None and not failed:
                after_merge(conn)
            if after_blocked is not None and failed:
                after_blocked(conn)
    except BaseException:
        # Leave no orphaned staging rows behind a failed gate or merge.
        with connect(dsn, autocommit=True) as conn:
            drop_staged(conn, ctx.batch_id)
        raise
    if not counts.reconciles:  # an invariant, not an expected fault: fail loudly
        raise AssertionError(f"batch {ctx.batch_id} does not reconcile: {counts}")
    return BatchOutcome(ctx.batch_id, counts, gate, failed)
