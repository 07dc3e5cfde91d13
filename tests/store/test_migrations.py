"""Migrations apply once, record themselves, and the schema matches the observation record."""

from __future__ import annotations

import psycopg

from tasks.normalize.observation import STAGED_COLUMNS, TABLE_COLUMNS
from tasks.store.migrations import apply_migrations, discover, pending
from tasks.store.tables import STAGING, TIMESERIES


def _columns(dsn: str, table: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return [r[0] for r in rows]


def test_rerunning_migrations_applies_nothing_and_reports_current_version(pg_dsn: str) -> None:
    report = apply_migrations(pg_dsn)
    assert report.applied == ()
    assert report.current_version == discover(report.flavor)[-1].version
    with psycopg.connect(pg_dsn) as conn:
        assert pending(conn) == []


def test_staging_columns_are_the_observation_record_in_copy_order(pg_dsn: str) -> None:
    assert tuple(_columns(pg_dsn, STAGING)) == STAGED_COLUMNS


def test_timeseries_columns_are_the_observation_record_plus_merge_bookkeeping(pg_dsn: str) -> None:
    assert tuple(_columns(pg_dsn, TIMESERIES)) == TABLE_COLUMNS


def test_every_flavour_has_the_same_versions() -> None:
    assert [m.version for m in discover("timescale")] == [m.version for m in discover("postgres")]
