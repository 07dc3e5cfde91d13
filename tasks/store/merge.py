"""Merge: move one gated batch from staging into the time-series table, in one transaction.

Only rows whose value changed are updated; the previous value goes to the revision history first.
When Kafka is configured, every inserted or changed row also gets an outbox message in the same
transaction, so the table and the published stream can never disagree.

Cost: a first load stores no row the batch could collide with, and most bulk batches of a reload
hold series whose stored periods lie elsewhere (the later parts of a long line). One index probe per
series finds out; only series with stored rows in the batch's period range pay for the revision
join, and a batch with none is written by a plain INSERT, without the upsert's conflict check.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from tasks.normalize.observation import STAGED_COLUMNS, TABLE_COLUMNS
from tasks.store.staging import BatchContext
from tasks.store.tables import METADATA, OUTBOX, REVISIONS, STAGING, TIMESERIES

# A row "changed" when EIA sent a different value or token; metadata-only changes are not revisions.
_CHANGED = "t.value IS DISTINCT FROM {s}.value OR t.raw_value IS DISTINCT FROM {s}.raw_value"
_UPDATABLE = [c for c in STAGED_COLUMNS if c not in ("tenant_id", "series_id", "period")]


@dataclass(frozen=True, slots=True)
class MergeCounts:
    staged: int
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.staged - self.inserted - self.updated


def ensure_partitions(conn: psycopg.Connection[TupleRow], batch_id: str) -> int:
    """Creates the partitions the batch's periods need, for its distinct months only (a no-op on
    TimescaleDB; on plain PostgreSQL yearly partitions, see migration 0008)."""
    row = conn.execute(
        f"""SELECT eia_ensure_partitions(array_agg(DISTINCT date_trunc('month', period, 'UTC'))) FROM {STAGING}
            WHERE ingest_batch_id = %s HAVING count(*) > 0""",
        (batch_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def merge_batch(conn: psycopg.Connection[TupleRow], ctx: BatchContext, *, outbox_topic: str | None) -> MergeCounts:
    """Upserts the staged batch; call inside a transaction. Returns inserted/updated/unchanged counts."""
    # Per series of the batch: its period range, and whether any stored row of the series falls in it
    # (one index probe per series). Only such series can hold revisions.
    stats = conn.execute(
        f"""WITH r AS (SELECT tenant_id, series_id, count(*) AS n, min(period) AS lo, max(period) AS hi
                FROM {STAGING} WHERE ingest_batch_id = %s GROUP BY tenant_id, series_id)
            SELECT coalesce(sum(r.n), 0), array_agg(r.series_id) FILTER (WHERE EXISTS (
                SELECT 1 FROM {TIMESERIES} t WHERE t.tenant_id = r.tenant_id AND t.series_id = r.series_id
                    AND t.period BETWEEN r.lo AND r.hi))
            FROM r""",
        (ctx.batch_id,),
    ).fetchone()
    staged, stored = (int(stats[0]), stats[1]) if stats else (0, None)
    if staged == 0:
        return MergeCounts(0, 0, 0)
    if not stored:
        # No stored row can collide with the batch (the probe above), so a plain INSERT does: it
        # skips the conflict check per row. A concurrent load may have stored some of these keys
        # since the probe; then the savepoint is undone and the batch merges as below.
        try:
            with conn.transaction():
                inserted, updated = _write(conn, ctx, outbox_topic, upsert=False)
        except psycopg.errors.UniqueViolation:
            stored = None
        else:
            upsert_metadata(conn, ctx)
            return MergeCounts(staged, inserted, updated)
    _record_revisions(conn, ctx, stored)
    inserted, updated = _write(conn, ctx, outbox_topic, upsert=True)
    # Part of the merge, not a step beside it: every stored series has its metadata row, which the
    # quality gate uses to skip history lookups for series never stored (see tasks/quality/rules.py).
    upsert_metadata(conn, ctx)
    return MergeCounts(staged, inserted, updated)


def _record_revisions(conn: psycopg.Connection[TupleRow], ctx: BatchContext, series: list[str] | None) -> None:
    """Files the stored rows the batch changes in the revision history (their old values), before
    the upsert overwrites them; only for `series` (None: every series of the batch)."""
    conn.execute(
        f"""INSERT INTO {REVISIONS} (tenant_id, series_id, period, raw_period, old_revision, old_value,
                old_raw_value, old_value_flag, new_value, new_raw_value, new_value_flag,
                ingest_run_id, ingest_batch_id)
            SELECT t.tenant_id, t.series_id, t.period, t.raw_period, t.revision, t.value, t.raw_value,
                   t.value_flag, s.value, s.raw_value, s.value_flag, s.ingest_run_id, s.ingest_batch_id
            FROM {STAGING} s
            JOIN {TIMESERIES} t USING (tenant_id, series_id, period)
            WHERE s.ingest_batch_id = %(batch)s AND (%(series)s::text[] IS NULL OR s.series_id = ANY(%(series)s))
                AND ({_CHANGED.format(s="s")})""",
        {"batch": ctx.batch_id, "series": series},
    )


def _write(
    conn: psycopg.Connection[TupleRow], ctx: BatchContext, outbox_topic: str | None, *, upsert: bool
) -> tuple[int, int]:
    """Writes the staged batch into the table (an upsert, or a plain INSERT when no key can be
    stored yet), with its outbox messages; returns (inserted, updated)."""
    cols = ", ".join(STAGED_COLUMNS)
    sets = ", ".join(f"{c} = excluded.{c}" for c in _UPDATABLE)
    conflict = (
        f"""ON CONFLICT (tenant_id, series_id, period) DO UPDATE
                SET {sets}, revision = t.revision + 1, updated_at = now()
                WHERE {_CHANGED.format(s="excluded")}"""
        if upsert
        else ""
    )
    # The outbox message is the whole row; without Kafka only the revision is needed, to count.
    returning = ", ".join(f"t.{c}" for c in TABLE_COLUMNS) if outbox_topic else "t.revision"
    outbox = (
        f""", ob AS (
            INSERT INTO {OUTBOX} (topic, message_key, payload, version, kind)
            SELECT %(topic)s, up.series_id, to_jsonb(up), up.revision, 'observation' FROM up)"""
        if outbox_topic
        else ""
    )
    # Rows go in key order, so concurrent merges lock the keys they share in the same order and
    # cannot deadlock.
    row = conn.execute(
        f"""WITH up AS (
                INSERT INTO {TIMESERIES} AS t ({cols})
                SELECT {cols} FROM {STAGING} WHERE ingest_batch_id = %(batch)s
                ORDER BY tenant_id, series_id, period
                {conflict}
                RETURNING {returning}){outbox}
            SELECT count(*) FILTER (WHERE revision = 0), count(*) FILTER (WHERE revision > 0) FROM up""",
        {"batch": ctx.batch_id, "topic": outbox_topic},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def upsert_metadata(conn: psycopg.Connection[TupleRow], ctx: BatchContext) -> None:
    """Series metadata from the staged batch (API path); bulk lines bring richer metadata of their own."""
    conn.execute(
        f"""INSERT INTO {METADATA} AS m (tenant_id, series_id, units, frequency, description, source, dataset,
                route, facets, updated_at)
            SELECT DISTINCT ON (series_id) tenant_id, series_id, unit, frequency, description, source, dataset,
                   metadata->>'route', metadata->'facets', now()
            FROM {STAGING} WHERE ingest_batch_id = %s
            ORDER BY series_id, period DESC
            ON CONFLICT (tenant_id, series_id) DO UPDATE SET
                units = coalesce(excluded.units, m.units),
                frequency = excluded.frequency,
                description = coalesce(excluded.description, m.description),
                dataset = coalesce(excluded.dataset, m.dataset),
                route = coalesce(excluded.route, m.route),
                facets = coalesce(excluded.facets, m.facets),
                updated_at = now()
            -- Rows whose content would not change are not rewritten (most batches change nothing).
            WHERE (m.units, m.frequency, m.description, m.dataset, m.route, m.facets) IS DISTINCT FROM
                (coalesce(excluded.units, m.units), excluded.frequency, coalesce(excluded.description, m.description),
                 coalesce(excluded.dataset, m.dataset), coalesce(excluded.route, m.route),
                 coalesce(excluded.facets, m.facets))""",
        (ctx.batch_id,),
    )
