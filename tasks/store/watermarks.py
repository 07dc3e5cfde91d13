"""Watermarks: the newest period already loaded, per catalog entry and per series id.

Read from the observation table itself (its primary key makes this an index lookup), so there is
no second copy of "what has been loaded" to drift out of date.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from tasks.core.catalog import CatalogEntry
from tasks.store.tables import TIMESERIES


def _entry_filter(entry: CatalogEntry) -> tuple[sql.Composable, list[object]]:
    """Rows of this entry's own series: its route, data columns and facet values (not the whole route)."""
    parts: list[sql.Composable] = [
        sql.SQL("dataset = %s AND frequency = %s AND metadata->>'column' = ANY(%s)"),
    ]
    params: list[object] = [entry.route, entry.frequency, list(entry.data)]
    for facet, values in sorted(entry.facets.items()):
        parts.append(sql.SQL("metadata->'facets'->>{} = ANY(%s)").format(sql.Literal(facet)))
        params.append(list(values))
    return sql.SQL(" AND ").join(parts), params


def read_watermarks(
    conn: psycopg.Connection[TupleRow], tenant_id: str, entries: Sequence[CatalogEntry], series_ids: Sequence[str]
) -> dict[str, datetime]:
    """Entry watermark = the oldest of its own series' newest periods (so no series falls behind).

    Only the entry's series count: another entry on the same route (other facet values) says nothing
    about what this one has loaded, for example after a run that stopped before reaching it.
    """
    marks: dict[str, datetime] = {}
    for entry in entries:
        where, params = _entry_filter(entry)
        row = conn.execute(
            sql.SQL(
                """SELECT min(newest) FROM (
                    SELECT max(period) AS newest FROM {table}
                    WHERE tenant_id = %s AND {where} GROUP BY series_id) per_series"""
            ).format(table=sql.Identifier(TIMESERIES), where=where),
            [tenant_id, *params],
        ).fetchone()
        if row and row[0] is not None:
            marks[entry.id] = row[0]
    if series_ids:
        rows = conn.execute(
            f"""SELECT series_id, max(period) FROM {TIMESERIES}
                WHERE tenant_id = %s AND series_id = ANY(%s) GROUP BY series_id""",
            (tenant_id, list(series_ids)),
        ).fetchall()
        marks.update({str(sid): newest for sid, newest in rows})
    return marks
