"""Migrations apply once, record themselves, and the schema matches the observation record."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from sql import SQL_DIR
from tasks.normalize.observation import STAGED_COLUMNS, TABLE_COLUMNS, Rejection
from tasks.store.migrations import apply_migrations, discover, pending
from tasks.store.quarantine import quarantine_rejections
from tasks.store.staging import BatchContext
from tasks.store.tables import STAGING, TIMESERIES
from tests.support.services import fresh_database


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


def test_0007_keeps_every_quarantine_row_of_an_older_database_and_files_a_repeat_once(
    pg_dsn: str, tmp_path: Path
) -> None:
    """A database quarantined the same row twice before natural keys existed: both copies stay, and
    from then on that row is filed once however often it comes back."""
    older = tmp_path / "sql"
    for folder in ("common", "postgres", "timescale"):
        (older / folder).mkdir(parents=True)
        for path in (SQL_DIR / folder).glob("*.sql"):
            if int(path.name[:4]) <= 6:
                shutil.copy(path, older / folder / path.name)
    insert = """INSERT INTO eia_series_quarantine (tenant_id, series_id, raw_period, raw_value, reason, source,
                    dataset, ingest_batch_id)
                VALUES ('t', 'S', '2024-13', '1.5', 'bad_period', 'eia-api-v2', 'r', %s)"""
    with fresh_database(pg_dsn, "eia_upgrade_0007") as dsn:
        assert apply_migrations(dsn, root=older).current_version == 6
        with psycopg.connect(dsn) as conn:
            for batch in ("b1", "b2"):
                conn.execute(insert, (batch,))
        applied = apply_migrations(dsn).applied
        # Every later migration applies, in order, on top of the older database.
        assert [m.version for m in applied] == [m.version for m in discover("postgres") if m.version > 6]
        with psycopg.connect(dsn) as conn:
            keys = conn.execute(
                "SELECT ingest_batch_id, natural_key IS NOT NULL FROM eia_series_quarantine ORDER BY id"
            )
            assert keys.fetchall() == [("b1", True), ("b2", False)]
            ctx = BatchContext("t", "run", "job", "b3", 0)
            again = Rejection("bad_period", "month 13", "S", "2024-13", "1.5", None)
            with conn.transaction():
                assert quarantine_rejections(conn, ctx, [again], source="eia-api-v2", dataset="r", dlq_topic="d") == {
                    "bad_period": 1
                }
            assert conn.execute("SELECT count(*) FROM eia_series_quarantine").fetchone() == (2,)
            assert conn.execute("SELECT count(*) FROM eia_outbox").fetchone() == (0,)
