"""Real services for tests: embedded PostgreSQL and the Tansu Kafka-protocol broker.

Environment overrides (`EIA_TEST_DATABASE_URL`, `EIA_TEST_KAFKA_BOOTSTRAP`) point the suite at
services someone else runs; otherwise the wheels shipped in the dev extras are started here.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from tasks.standin.tansu import tansu_broker
from tasks.standin.tansu import tansu_command as tansu_command  # re-exported: tests/reliability start their own
from tasks.store.database import embedded_dsn
from tasks.store.migrations import apply_migrations


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_database(tmp: Path) -> str:
    configured = os.environ.get("EIA_TEST_DATABASE_URL")
    dsn = configured or embedded_dsn(tmp / "pgdata")
    if not configured:
        _throwaway_durability(dsn)
    apply_migrations(dsn)
    return dsn


def _throwaway_durability(dsn: str) -> None:
    """The session's own server lives in a temporary directory and never outlives the session, so it
    need not flush to disk: every commit and the shutdown checkpoint skip fsync. Transactions,
    locking and crash behaviour between sessions are unchanged; the restart and kill tests run on
    their own servers with the defaults."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"ALTER SYSTEM SET {setting} = off")
        conn.execute("SELECT pg_reload_conf()")


# Operational tables emptied between tests; migrations are applied once per session.
_RESET_TABLES = (
    "eia_series_timeseries",
    "eia_series_staging",
    "eia_series_quarantine",
    "eia_series_revisions",
    "eia_series_metadata",
    "eia_categories",
    "eia_run_log",
    "eia_batch_log",
    "eia_quality_results",
    "eia_breaker_state",
    "eia_audit_log",
    "eia_outbox",
)


def reset_database(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        existing = [t for t in _RESET_TABLES if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone() != (None,)]
        extra = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'eia\\_%%' "
                "AND tablename NOT LIKE 'eia\\_series\\_timeseries\\_p%%' AND tablename <> 'eia_schema_migrations'"
            ).fetchall()
            if r[0] not in existing
        ]
        conn.execute(f"TRUNCATE {', '.join(existing + extra)} RESTART IDENTITY CASCADE")


@contextlib.contextmanager
def fresh_database(dsn: str, name: str) -> Iterator[str]:
    """An empty database `name` on the server behind `dsn` (dropped afterwards), for tests that must not
    share the session database: an older schema, or data that creates many partitions."""
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(**{**conninfo_to_dict(dsn), "dbname": name})
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def scalar(dsn: str, query: str, *params: Any) -> Any:
    """The one value a query returns (it must return a row)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


@contextlib.contextmanager
def kafka_broker() -> Iterator[str]:
    """Yields a bootstrap address: `EIA_TEST_KAFKA_BOOTSTRAP`, or a Tansu broker started here (the demo's own)."""
    configured = os.environ.get("EIA_TEST_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    with tansu_broker() as bootstrap:
        yield bootstrap
