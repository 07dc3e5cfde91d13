"""The monthly aggregate `eia_monthly_aggregates`: kept current after loads on plain PostgreSQL.

On TimescaleDB it is a continuous aggregate that its refresh policy keeps current (migration 0002), so
nothing is done here. On plain PostgreSQL it is a materialized view, populated by migration 0008 and
refreshed here, CONCURRENTLY (its unique index allows it), so readers are never blocked and never see
"has not been populated". The loaders call this once per run that changed rows, not per batch: a
refresh recomputes the whole view.
"""

from __future__ import annotations

import psycopg
from psycopg.rows import TupleRow

from tasks.store.migrations import recorded_flavor


def refresh_monthly_aggregates(conn: psycopg.Connection[TupleRow]) -> bool:
    """Refreshes the view on plain PostgreSQL (autocommit or inside a transaction); False on TimescaleDB."""
    if recorded_flavor(conn) != "postgres":
        return False
    conn.execute("CALL eia_refresh_aggregates()")
    return True
