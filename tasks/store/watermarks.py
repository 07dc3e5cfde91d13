"""Watermarks: the newest period already loaded, per catalog entry and per series id.

Read from the observation table itself (its primary key makes this an index lookup), so there is
no second copy of "what has been loaded" to drift out of date.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from tasks.eia.catalog import CatalogEntry
from tasks.store.tables import TIMESERIES


def read_watermarks(
    conn: psycopg.Connection[TupleRow], tenant_id: str, entries: Sequence[CatalogEntry], series_ids: Sequence[str]
) -> dict[str, datetime]:
    """Entry watermark = the oldest of its series' newest periods (so no series falls behind)."""
    marks: dict[str, datetime] = {}
    for entry in entries:
        row = conn.execute(
            f"""SELECT min(newest) FROM (
                    SELECT max(period) AS newest FROM {TIMESERIES}
                    WHERE tenant_id = %s AND dataset = %s AND frequency = %s GROUP BY series_id) per_series""",
            (tenant_id, entry.route, entry.frequency),
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
