"""Quarantine: where rows that cannot be loaded go, each with a reason, so nothing is lost.

Two entry points: rejections from the normalizers (rows that never became observations), and
staged rows that a quality gate refused. With Kafka configured each quarantined row also gets a
DLQ outbox message in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from tasks.normalize.observation import Rejection
from tasks.ops.redact import scrub
from tasks.store.staging import BatchContext
from tasks.store.tables import OUTBOX, QUARANTINE, STAGING

_DLQ_FROM_QUARANTINE = f"""
    INSERT INTO {OUTBOX} (topic, message_key, payload, version, kind)
    SELECT %(topic)s, coalesce(q.series_id, ''), to_jsonb(q), 0, 'quarantine'
    FROM {QUARANTINE} q WHERE q.ingest_batch_id = %(batch)s AND q.id > %(after)s"""


def _max_id(conn: psycopg.Connection[TupleRow]) -> int:
    row = conn.execute(f"SELECT coalesce(max(id), 0) FROM {QUARANTINE}").fetchone()
    return int(row[0]) if row else 0


def _payload(payload: Any) -> str | None:
    if payload is None:
        return None
    # JSONB cannot hold NUL characters; keep everything else exactly, minus secrets.
    return json.dumps(scrub(payload), default=str).replace("\\u0000", "\\\\u0000")


def quarantine_rejections(
    conn: psycopg.Connection[TupleRow],
    ctx: BatchContext,
    rejections: Sequence[Rejection],
    *,
    source: str,
    dataset: str | None,
    dlq_topic: str | None,
) -> int:
    """Writes normalizer rejections to quarantine (and the DLQ outbox); returns the count."""
    if not rejections:
        return 0
    after = _max_id(conn) if dlq_topic else 0
    with conn.cursor() as cur:
        cur.executemany(
            f"""INSERT INTO {QUARANTINE} (tenant_id, series_id, raw_period, raw_value, reason, detail,
                    source, dataset, payload, ingest_run_id, ingest_batch_id)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)""",
            [
                (
                    ctx.tenant_id,
                    scrub(r.series_id),
                    scrub(r.raw_period),
                    scrub(r.raw_value),
                    r.reason,
                    scrub(r.detail),
                    source,
                    dataset,
                    _payload(r.payload),
                    ctx.run_id,
                    ctx.batch_id,
                )
                for r in rejections
            ],
        )
    if dlq_topic:
        conn.execute(_DLQ_FROM_QUARANTINE, {"topic": dlq_topic, "batch": ctx.batch_id, "after": after})
    return len(rejections)


def quarantine_staged(
    conn: psycopg.Connection[TupleRow],
    ctx: BatchContext,
    *,
    reason: str,
    detail: str,
    where_sql: str = "TRUE",
    dlq_topic: str | None,
) -> int:
    """Moves staged rows of the batch matching `where_sql` (a trusted predicate over staging) to quarantine."""
    after = _max_id(conn) if dlq_topic else 0
    cur = conn.execute(
        f"""INSERT INTO {QUARANTINE} (tenant_id, series_id, raw_period, raw_value, reason, detail,
                source, dataset, payload, ingest_run_id, ingest_batch_id)
            SELECT s.tenant_id, s.series_id, s.raw_period, s.raw_value, %(reason)s, %(detail)s,
                   s.source, s.dataset, to_jsonb(s) - 'ingest_ts', s.ingest_run_id, s.ingest_batch_id
            FROM {STAGING} s WHERE s.ingest_batch_id = %(batch)s AND ({where_sql})""",
        {"reason": reason, "detail": detail, "batch": ctx.batch_id},
    )
    moved = cur.rowcount
    conn.execute(
        f"DELETE FROM {STAGING} s WHERE s.ingest_batch_id = %(batch)s AND ({where_sql})", {"batch": ctx.batch_id}
    )
    if dlq_topic and moved:
        conn.execute(_DLQ_FROM_QUARANTINE, {"topic": dlq_topic, "batch": ctx.batch_id, "after": after})
    return moved
