"""Loading one batch: stage (COPY) → gate → set aside offending rows → gate again → quarantine + merge.

Row-level quarantine, batch-level blocking:
- A failed fail-level **row** rule names its offending rows. They are set aside (moved under a held
  staging id, `staging.hold_staged`), in registry order so a row offending twice goes under the first
  rule, and the Soda contract is verified again on what remains: what is merged must pass the
  contract. The set-aside rows go to quarantine under the rule's name; the rest of the batch merges.
- A failed fail-level **batch** rule (schema, an empty batch) or a check that could not run blocks the
  batch as a whole, as does a systematic break: more than `max_quarantine_share` of the staged rows
  failing row rules (default 50%), or a second verification that still fails. A blocked batch
  merges nothing; its offending rows go to quarantine under their rules and the rest under
  `batch_blocked`, and the caller fails the entry or stops the dataset.

The staged batch is committed before the gate because Soda reads it over its own connection; setting
rows aside commits too (the second verification must see it). Everything that leaves staging
(quarantine, merge, quality results, batch log, the caller's hooks) is one transaction, so a crash
leaves either the whole batch loaded or none of it; staged leftovers of a killed run are removed by
the next run (`staging.drop_abandoned_staging`). Quarantine is idempotent (`quarantine.py`), so a
batch loaded again files no row twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from tasks.normalize.observation import NormalizeResult, Observation, Rejection
from tasks.quality.gate import BATCH_BLOCKED, GateResult, prepare_batch, record_results, run_gate
from tasks.quality.rules import rule
from tasks.store.database import connect, transaction
from tasks.store.merge import ensure_partitions, merge_batch
from tasks.store.quarantine import quarantine_rejections, quarantine_staged
from tasks.store.runlog import Counts, record_batch
from tasks.store.staging import BatchContext, drop_staged, held_batch_id, hold_staged, stage_observations

logger = logging.getLogger(__name__)

# More than this share of a batch failing row rules is a systematic break, not a few bad rows: the
# batch is blocked as a whole and the entry fails, naming the rules.
DEFAULT_MAX_QUARANTINE_SHARE: Final = 0.5

Hook = Callable[[psycopg.Connection[TupleRow]], None]


@dataclass(slots=True)
class BatchOutcome:
    batch_id: str
    counts: Counts
    gate: GateResult | None = None
    failed_checks: list[str] = field(default_factory=list)  # fail-level checks that failed, in either pass
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)  # normalizer reasons and rule names
    blocked: str | None = None  # why the batch was blocked as a whole; None when it merged
    recheck: GateResult | None = None  # the contract on what remained after the offending rows left

    @property
    def passed(self) -> bool:
        """The batch merged (possibly without some quarantined rows)."""
        return self.blocked is None


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


def check_share(share: float) -> float:
    """A usable `max_quarantine_share`, or ValueError naming the setting."""
    if not 0 <= share <= 1:
        raise ValueError(f"max_quarantine_share must be between 0 and 1, got {share!r}")
    return share


def _set_aside(dsn: str, ctx: BatchContext, rules: list[str]) -> dict[str, int]:
    """Sets the failed row rules' offending rows aside, committed (the second verification must see it)."""
    with transaction(dsn) as conn:
        return _set_aside_in(conn, ctx, rules)


def _set_aside_in(conn: psycopg.Connection[TupleRow], ctx: BatchContext, rules: list[str]) -> dict[str, int]:
    """Moves each failed row rule's offending rows under its held id (first rule wins); rows per rule."""
    held: dict[str, int] = {}
    if not rules:
        return held
    # The cross-row rules read the batch's aggregates, computed once before any row moves, so every
    # rule sees the batch the gate saw.
    prepare_batch(conn, ctx.batch_id)
    for name in rules:
        predicate = rule(name).predicate
        assert predicate is not None  # row rules have predicates (Rule.__post_init__)
        moved = hold_staged(conn, ctx.batch_id, held_batch_id(ctx.batch_id, name), predicate)
        if moved:
            held[name] = moved
    return held


def _names(names: Iterable[str], most: int = 5) -> str:
    names = list(dict.fromkeys(names))
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _judge(
    dsn: str, ctx: BatchContext, staged: int, expected_rows: tuple[int, int] | None, max_share: float
) -> tuple[GateResult, GateResult | None, dict[str, int], str | None]:
    """Gate, set aside, gate again. Returns (first verdict, second verdict, rows held per rule, why blocked)."""
    gate = run_gate(dsn, ctx, expected_rows=expected_rows)
    if gate.batch_failures:
        return gate, None, {}, f"quality gate failed ({_names(gate.batch_failures + gate.row_failures)})"
    if not gate.row_failures:
        return gate, None, {}, None
    held = _set_aside(dsn, ctx, gate.row_failures)
    offending = sum(held.values())
    if offending > max_share * staged:
        return (
            gate,
            None,
            held,
            f"{offending} of the batch's {staged} rows ({offending / staged:.0%}) fail row rules "
            f"({_names(held)}), more than max_quarantine_share={max_share:.0%}: a systematic break",
        )
    if offending == staged:  # max_share 1.0 and nothing left: there is nothing to verify or merge
        return gate, None, held, None
    recheck = run_gate(dsn, ctx, expected_rows=expected_rows, examples=0)
    if recheck.failed:
        return (
            gate,
            recheck,
            held,
            f"the rows left after quarantining {offending} failed the contract again ({_names(recheck.failed)})",
        )
    return gate, recheck, held, None


@dataclass(frozen=True, slots=True)
class Staged:
    """A batch's observations already staged (committed) by `stage_batch`."""

    counts: Counts  # `received` and `skipped` set
    rows: int  # rows staged
    partitions_ready: bool = False  # the partitions the rows need exist (made when they were staged)


def stage_batch(dsn: str, ctx: BatchContext, result: NormalizeResult, *, retention_years: int = 0) -> Staged:
    """Stages (COPY, committed) the batch's observations inside the retention horizon.

    Apart from `load_batch` so that a loader can stage the next batch while this one settles. The
    partitions the rows need are made here too, so that work is off the merge's path as well.
    """
    counts = Counts(received=result.received)
    kept, counts.skipped = split_retention(result.observations, retention_horizon(retention_years))
    with transaction(dsn) as conn:
        rows = stage_observations(conn, ctx, kept)
        if rows:
            ensure_partitions(conn, ctx.batch_id)
    return Staged(counts, rows, partitions_ready=True)


def load_batch(
    dsn: str,
    ctx: BatchContext,
    result: NormalizeResult,
    targets: LoadTargets,
    *,
    retention_years: int = 0,
    expected_rows: tuple[int, int] | None = None,
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE,
    before_write: Hook | None = None,
    after_merge: Hook | None = None,
    staged: Staged | None = None,
) -> BatchOutcome:
    """Loads one batch: `stage_batch` (unless `staged` says it was, for `ctx.batch_id`: then only
    `result.rejections` is read), then `settle_batch`."""
    check_share(max_quarantine_share)
    if staged is None:
        staged = stage_batch(dsn, ctx, result, retention_years=retention_years)
    return settle_batch(
        dsn,
        ctx,
        staged.counts,
        staged.rows,
        result.rejections,
        targets,
        expected_rows=expected_rows,
        max_quarantine_share=max_quarantine_share,
        before_write=before_write,
        after_merge=after_merge,
        partitions_ready=staged.partitions_ready,
    )


def settle_batch(
    dsn: str,
    ctx: BatchContext,
    counts: Counts,
    staged: int,
    rejections: Sequence[Rejection],
    targets: LoadTargets,
    *,
    expected_rows: tuple[int, int] | None = None,
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE,
    before_write: Hook | None = None,
    after_merge: Hook | None = None,
    partitions_ready: bool = False,
) -> BatchOutcome:
    """Gates the `staged` rows of batch `ctx.batch_id` and settles every row of it: quarantined (the
    normalizer's `rejections` and the rows rules refuse), merged, or blocked (module docstring).

    `counts` arrives with `received` and `skipped` set and leaves reconciled. `before_write(conn)` runs
    first inside the final transaction (a quarantine replay removes the rows it re-files there, so the
    natural key never sees them twice). `after_merge(conn)` runs last inside it when the batch was not
    blocked: the bulk flow moves its checkpoint there, so the checkpoint commits with the rows or not at
    all. `partitions_ready`: `stage_batch` already made the partitions the rows need.
    """
    max_share = check_share(max_quarantine_share)
    outcome = BatchOutcome(ctx.batch_id, counts)
    held: dict[str, int] = {}
    held_ids: list[str] = []
    try:
        if staged:
            outcome.gate, outcome.recheck, held, outcome.blocked = _judge(dsn, ctx, staged, expected_rows, max_share)
            held_ids = [held_batch_id(ctx.batch_id, name) for name in held]
            outcome.failed_checks = list(
                dict.fromkeys(outcome.gate.failed + (outcome.recheck.failed if outcome.recheck else []))
            )
        by_reason = outcome.quarantined_by_reason
        with transaction(dsn) as conn:
            if before_write is not None:
                before_write(conn)
            for reason, n in quarantine_rejections(
                conn,
                ctx,
                rejections,
                source=targets.source,
                dataset=targets.dataset,
                dlq_topic=targets.dlq_topic,
            ).items():
                by_reason[reason] = by_reason.get(reason, 0) + n
            if outcome.gate is not None:
                record_results(conn, ctx, outcome.gate)
            if outcome.blocked is not None and outcome.gate is not None and not held:
                # Blocked before anything was set aside: the failed row rules still name their rows.
                held = _set_aside_in(conn, ctx, outcome.gate.row_failures)
                held_ids = [held_batch_id(ctx.batch_id, name) for name in held]
            for name in held:
                by_reason[name] = quarantine_staged(
                    conn,
                    ctx,
                    reason=name,
                    detail=f"failed quality check {name}: {rule(name).description}",
                    staged_as=held_batch_id(ctx.batch_id, name),
                    dlq_topic=targets.dlq_topic,
                )
            if outcome.blocked is not None:
                rest = quarantine_staged(
                    conn,
                    ctx,
                    reason=BATCH_BLOCKED,
                    detail=f"batch blocked: {outcome.blocked}",
                    dlq_topic=targets.dlq_topic,
                )
                if rest:
                    by_reason[BATCH_BLOCKED] = rest
            elif staged > sum(held.values()):
                if not partitions_ready:
                    ensure_partitions(conn, ctx.batch_id)
                merged = merge_batch(conn, ctx, outbox_topic=targets.outbox_topic)
                counts.inserted, counts.updated, counts.unchanged = merged.inserted, merged.updated, merged.unchanged
            counts.quarantined = sum(by_reason.values())
            drop_staged(conn, ctx.batch_id, *held_ids)
            record_batch(
                conn,
                ctx,
                counts,
                source=targets.source,
                dataset=targets.dataset,
                gate_passed=outcome.blocked is None,
                failed_checks=outcome.failed_checks,
                quality_score=outcome.gate.score if outcome.gate else None,
                quarantined_by_reason=by_reason,
                recheck_passed=None if outcome.recheck is None else not outcome.recheck.failed,
                blocked_reason=outcome.blocked,
            )
            if after_merge is not None and outcome.blocked is None:
                after_merge(conn)
    except BaseException:
        # Leave no orphaned staging rows behind a failed gate or merge.
        with connect(dsn, autocommit=True) as conn:
            drop_staged(conn, ctx.batch_id, *held_ids)
        raise
    if not counts.reconciles:  # an invariant, not an expected fault: fail loudly
        raise AssertionError(f"batch {ctx.batch_id} does not reconcile: {counts}")
    return outcome


def quarantine_summary(by_reason: Mapping[str, int]) -> str:
    """`9 quarantined (period_not_in_future 3, unknown_unit 4, ...)`: the count and why, largest first."""
    total = sum(by_reason.values())
    if not total:
        return "0 quarantined"
    parts = sorted(((n, reason) for reason, n in by_reason.items() if n), key=lambda item: (-item[0], item[1]))
    return f"{total} quarantined (" + ", ".join(f"{reason} {n}" for n, reason in parts) + ")"
