"""Staging: COPY one batch of observations into the unlogged staging table.

A batch is the unit of gating and merging. COPY is used because it is several times faster than
INSERT for the bulk path, and the same code serves the API path.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from tasks.normalize.observation import STAGED_COLUMNS, Observation
from tasks.store.tables import STAGING

_COPY_SQL = f"COPY {STAGING} ({', '.join(STAGED_COLUMNS)}) FROM STDIN"


@dataclass(frozen=True, slots=True)
class BatchContext:
    """Who is loading what: stamped on every staged, merged and quarantined row."""

    tenant_id: str
    run_id: str
    job_id: str  # the flow name (runbook's ingest_job_id)
    batch_id: str
    ingest_ts: int  # microseconds since the epoch

    @classmethod
    def new(cls, tenant_id: str, run_id: str, job_id: str) -> BatchContext:
        return cls(tenant_id, run_id, job_id, new_batch_id(), time.time_ns() // 1000)


def new_batch_id() -> str:
    """Time-ordered and unique: sorts by creation, readable in logs."""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:12]}"


def _row(ctx: BatchContext, o: Observation) -> tuple[object, ...]:
    return (
        ctx.tenant_id,
        o.series_id,
        o.period,
        o.period_end,
        o.raw_period,
        o.frequency,
        o.value,
        o.raw_value,
        o.value_flag,
        o.unit,
        o.canonical_unit,
        o.canonical_currency,
        o.conversion_factor,
        o.canonical_value,
        o.area,
        o.sector,
        o.seasonal_adjustment,
        o.description,
        o.source,
        o.dataset,
        None if o.metadata is None else json.dumps(o.metadata, separators=(",", ":"), default=str),
        ctx.ingest_ts,
        ctx.job_id,
        ctx.run_id,
        ctx.batch_id,
    )


def stage_observations(
    conn: psycopg.Connection[TupleRow], ctx: BatchContext, observations: Iterable[Observation]
) -> int:
    """COPYs observations into staging under ctx.batch_id; returns how many were staged."""
    staged = 0
    with conn.cursor() as cur, cur.copy(_COPY_SQL) as copy:
        for obs in observations:
            copy.write_row(_row(ctx, obs))
            staged += 1
    return staged


def drop_staged(conn: psycopg.Connection[TupleRow], batch_id: str, *also: str) -> None:
    """Deletes the batch's staged rows, and those staged under the other ids given (rows set aside)."""
    conn.execute(f"DELETE FROM {STAGING} WHERE ingest_batch_id = ANY(%s)", ([batch_id, *also],))


def held_batch_id(batch_id: str, reason: str) -> str:
    """The staging id under which the batch's rows offending `reason` wait, out of the batch's way."""
    return f"{batch_id}:held:{reason}"


def hold_staged(conn: psycopg.Connection[TupleRow], batch_id: str, held_id: str, where_sql: str) -> int:
    """Moves the batch's staged rows matching `where_sql` (a trusted predicate over staging `s`, which
    may bind `%(batch)s`) under `held_id`; returns how many moved.

    Rows set aside this way are no longer part of the batch for the gate (its contract filters on the
    batch id) or the merge; the load files them in quarantine in its final transaction.
    """
    cur = conn.execute(
        f"UPDATE {STAGING} s SET ingest_batch_id = %(held)s WHERE s.ingest_batch_id = %(batch)s AND ({where_sql})",
        {"batch": batch_id, "held": held_id},
    )
    return cur.rowcount


# A batch lives seconds to minutes in staging; one older than this belongs to a killed process.
ABANDONED_AFTER: Final = timedelta(hours=6)


def drop_abandoned_staging(conn: psycopg.Connection[TupleRow], older_than: timedelta = ABANDONED_AFTER) -> int:
    """Deletes staged rows of batches whose process died before it could (a `kill -9` runs no cleanup).

    Such rows were never merged, and their batch is redone by the rerun that follows, so nothing is
    lost; left alone they would only grow the unlogged staging table. Returns how many rows went.
    """
    cutoff_us = (time.time_ns() // 1000) - int(older_than.total_seconds() * 1_000_000)
    cur = conn.execute(f"DELETE FROM {STAGING} WHERE ingest_ts < %s", (cutoff_us,))
    return cur.rowcount
