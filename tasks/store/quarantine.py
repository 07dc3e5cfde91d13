"""Quarantine: where rows that cannot be loaded go, each with a reason, so nothing is lost.

Two entry points: rejections from the normalizers (rows that never became observations), and
staged rows that the quality gate set aside or blocked. With Kafka configured each newly quarantined
row also gets a DLQ outbox message in the same transaction.

Idempotent: a row is filed once per natural key, (tenant, source, dataset, series, raw period, raw
value, reason), computed by the SQL function `eia_quarantine_key` (migration 0007). Re-reading an
archive version or re-fetching the same API rows files nothing new and sends no second DLQ message;
the counts returned still include such rows, because every row of a batch must be accounted for.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow

from tasks.core.redact import scrub
from tasks.normalize.observation import Rejection
from tasks.store.staging import BatchContext
from tasks.store.tables import OUTBOX, QUARANTINE, STAGING

_COLUMNS: Final = (
    "tenant_id, series_id, raw_period, raw_value, reason, detail, source, dataset, payload, ingest_run_id, "
    "ingest_batch_id, natural_key"
)
_KEY: Final = (
    "eia_quarantine_key({q}source, {q}dataset, {q}series_id, {q}raw_period, {q}raw_value, {q}reason, {q}payload)"
)
# The DLQ message of each row this statement inserted (never of a row already filed).
_DLQ: Final = f""", dlq AS (
        INSERT INTO {OUTBOX} (topic, message_key, payload, version, kind)
        SELECT %(topic)s, coalesce(q.series_id, ''), to_jsonb(q), 0, 'quarantine' FROM filed q)"""


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
) -> dict[str, int]:
    """Files normalizer rejections in quarantine (and the DLQ outbox); returns rows per reason.

    The rows go through a temporary table so that one INSERT ... ON CONFLICT DO NOTHING files them and
    writes the DLQ messages of exactly the rows it inserted.
    """
    if not rejections:
        return {}
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS eia_rejections_in (series_id text, raw_period text, raw_value text, "
        "reason text, detail text, payload jsonb)"
    )
    conn.execute("DELETE FROM eia_rejections_in")
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY eia_rejections_in (series_id, raw_period, raw_value, reason, detail, payload) FROM STDIN"
        ) as copy,
    ):
        for r in rejections:
            copy.write_row(
                (
                    scrub(r.series_id),
                    scrub(r.raw_period),
                    scrub(r.raw_value),
                    r.reason,
                    scrub(r.detail),
                    _payload(r.payload),
                )
            )
    conn.execute(
        f"""WITH incoming AS (
                SELECT %(tenant)s AS tenant_id, r.series_id, r.raw_period, r.raw_value, r.reason, r.detail,
                       %(source)s::text AS source, %(dataset)s::text AS dataset, r.payload
                FROM eia_rejections_in r
            ), filed AS (
                INSERT INTO {QUARANTINE} ({_COLUMNS})
                SELECT i.tenant_id, i.series_id, i.raw_period, i.raw_value, i.reason, i.detail, i.source, i.dataset,
                       i.payload, %(run)s, %(batch)s, {_KEY.format(q="i.")}
                FROM incoming i
                ON CONFLICT DO NOTHING
                RETURNING *){_DLQ if dlq_topic else ""}
            SELECT count(*) FROM filed""",
        {
            "tenant": ctx.tenant_id,
            "source": source,
            "dataset": dataset,
            "run": ctx.run_id,
            "batch": ctx.batch_id,
            "topic": dlq_topic,
        },
    )
    return dict(Counter(r.reason for r in rejections))


def quarantine_staged(
    conn: psycopg.Connection[TupleRow],
    ctx: BatchContext,
    *,
    reason: str,
    detail: str,
    where_sql: str = "TRUE",
    staged_as: str | None = None,
    dlq_topic: str | None,
) -> int:
    """Moves the batch's staged rows matching `where_sql` (a trusted predicate over staging `s`) to
    quarantine; returns how many left staging (rows filed before are not filed twice).

    `staged_as` is the staging batch id the rows sit under when it is not the batch's own (rows the
    gate set aside); they are filed under the batch's id either way.
    """
    row = conn.execute(
        f"""WITH moved AS (
                DELETE FROM {STAGING} s WHERE s.ingest_batch_id = %(staged)s AND ({where_sql})
                RETURNING s.*
            ), filed AS (
                INSERT INTO {QUARANTINE} ({_COLUMNS})
                SELECT m.tenant_id, m.series_id, m.raw_period, m.raw_value, %(reason)s::text, %(detail)s::text,
                       m.source, m.dataset, p.payload, m.ingest_run_id, %(batch)s::text,
                       eia_quarantine_key(m.source, m.dataset, m.series_id, m.raw_period, m.raw_value,
                                          %(reason)s::text, p.payload)
                FROM moved m
                CROSS JOIN LATERAL (SELECT to_jsonb(m) - 'ingest_ts'
                    || jsonb_build_object('ingest_batch_id', %(batch)s::text) AS payload) p
                ON CONFLICT DO NOTHING
                RETURNING *){_DLQ if dlq_topic else ""}
            SELECT count(*) FROM moved""",
        {
            "reason": reason,
            "detail": detail,
            "batch": ctx.batch_id,
            "staged": staged_as or ctx.batch_id,
            "topic": dlq_topic,
        },
    ).fetchone()
    return int(row[0]) if row else 0
