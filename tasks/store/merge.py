"""Merge: move one gated batch from staging into the time-series table, in one transaction.

Only rows whose value changed are updated; the previous value goes to the revision history first.
When Kafka is configured, every inserted or changed row also gets an outbox message in the same
transaction, so the table and the published stream can never disagree.
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
    staged_row = conn.execute(f"SELECT count(*) FROM {STAGING} WHERE ingest_batch_id = %s", (ctx.batch_id,)).fetchone()
    staged = int(staged_row[0]) if staged_row else 0
    if staged == 0:
        return MergeCounts(0, 0, 0)
    # Part of the merge, not a step beside it: every stored series has its metadata row, which the
    # quality gate uses to skip history lookups for series never stored (see tasks/quality/rules.py).
    upsert_metadata(conn, ctx)
    # Lock the keys this batch touches in a stable order, so concurrent merges cannot deadlock.
    conn.execute(
        f"""INSERT INTO {REVISIONS} (tenant_id, series_id, period, raw_period, old_revision, old_value,
                old_raw_value, old_value_flag, new_value, new_raw_value, new_value_flag,
                ingest_run_id, ingest_batch_id)
            SELECT t.tenant_id, t.series_id, t.period, t.raw_period, t.revision, t.value, t.raw_value,
                   t.value_flag, s.value, s.raw_value, s.value_flag, s.ingest_run_id, s.ingest_batch_id
            FROM {STAGING} s
            JOIN {TIMESERIES} t USING (tenant_id, series_id, period)
            WHERE s.ingest_batch_id = %s AND ({_CHANGED.format(s="s")})""",
        (ctx.batch_id,),
    )
    cols = ", ".join(STAGED_COLUMNS)
    sets = ", ".join(f"{c} = excluded.{c}" for c in _UPDATABLE)
    returning = ", ".join(f"t.{c}" for c in TABLE_COLUMNS)
    outbox = (
        f""", ob AS (
            INSERT INTO {OUTBOX} (topic, message_key, payload, version, kind)
            SELECT %(topic)s, up.series_id, to_jsonb(up), up.revision, 'observation' FROM up)"""
        if outbox_topic
        else ""
    )
    row = conn.execute(
        f"""WITH up AS (
                INSERT INTO {TIMESERIES} AS t ({cols})
                SELECT {cols} FROM {STAGING} WHERE ingest_batch_id = %(batch)s
                ORDER BY tenant_id, series_id, period
                ON CONFLICT (tenant_id, series_id, period) DO UPDATE
                SET {sets}, revision = t.revision + 1, updated_at = now()
                WHERE {_CHANGED.format(s="excluded")}
                RETURNING {returning}){outbox}
            SELECT count(*) FILTER (WHERE revision = 0), count(*) FILTER (WHERE revision > 0) FROM up""",
        {"batch": ctx.batch_id, "topic": outbox_topic},
    ).fetchone()
    assert row is not None
    return MergeCounts(staged, int(row[0]), int(row[1]))


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
                updated_at = now()""",
        (ctx.batch_id,),
    )
