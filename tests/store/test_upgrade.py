"""`eia init` upgrades a database made by the previous release and keeps every row of every table."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Table, insert, select
from sqlalchemy.dialects import postgresql
from sqlmodel import SQLModel

from sql import SQL_DIR
from tasks.publish.outbox import outbox_stats
from tasks.quality.inspect import list_quarantine
from tasks.quota.breaker import breaker_status
from tasks.store import tables
from tasks.store.migrations import apply_migrations, discover
from tasks.store.sessions import engine
from tests.store.schema import CATALOG_QUERY, parse_description
from tests.support.services import fresh_database

# The previous release's migrations: 0001-0006, unchanged since.
PREVIOUS_RELEASE = 6
START = datetime(2024, 1, 1, tzinfo=UTC)
# Tables the later migrations add (no rows to keep).
ADDED_SINCE = {tables.THROTTLE_STATE}
# Values the CHECK constraints allow (every other column gets a value of its type).
CHECKED = {
    (tables.RUN_LOG, "status"): "completed",
    (tables.QUALITY_RESULTS, "severity"): "warn",
    (tables.QUALITY_RESULTS, "outcome"): "pass",
    (tables.BREAKER, "state"): "open",
    (tables.OUTBOX, "kind"): "observation",
    (tables.RATE_STATE, "reason"): "throttled",
    (tables.COST_SNAPSHOTS, "budget_state"): "ok",
    (tables.COST_SNAPSHOTS, "quota_state"): "warning",
    (tables.COST_SNAPSHOTS, "state"): "warning",
    (tables.MONITOR_CHECKS, "state"): "breached",
    (tables.MONITOR_CHECKS, "severity"): "critical",
}


def previous_release(tmp_path: Path) -> Path:
    older = tmp_path / "sql"
    for folder in ("common", "postgres", "timescale"):
        (older / folder).mkdir(parents=True)
        for path in (SQL_DIR / folder).glob("*.sql"):
            if int(path.name[:4]) <= PREVIOUS_RELEASE:
                shutil.copy(path, older / folder / path.name)
    return older


def value(table: Table, column: str, i: int) -> Any:
    """Row `i`'s value of a column: row 0 fills every column, row 1 leaves the NULL-able ones NULL."""
    c = table.c[column]
    if i == 1 and c.nullable:
        return None
    if (table.name, column) in CHECKED:
        return CHECKED[table.name, column]
    kind = c.type
    if isinstance(kind, postgresql.TIMESTAMP):
        return START + timedelta(hours=i)
    if isinstance(kind, postgresql.ARRAY):
        return [f"{column}-{i}", "second"]
    if isinstance(kind, postgresql.JSONB):
        return {"row": i, "column": column}
    if isinstance(kind, postgresql.BOOLEAN):
        return i == 0
    if isinstance(kind, postgresql.NUMERIC):
        return Decimal("12.34") + i
    if isinstance(kind, postgresql.DOUBLE_PRECISION):
        return 1.5 + i
    if isinstance(kind, postgresql.BIGINT | postgresql.INTEGER):
        return 7 + i
    return f"{column}-{i}"


def test_eia_init_upgrades_the_previous_release_and_keeps_every_row_of_every_table(pg_dsn: str, tmp_path: Path) -> None:
    model_tables = list(SQLModel.metadata.tables.values())
    with fresh_database(pg_dsn, "eia_upgrade_release") as dsn:
        assert apply_migrations(dsn, root=previous_release(tmp_path)).current_version == PREVIOUS_RELEASE
        with psycopg.connect(dsn) as conn:
            row = conn.execute(CATALOG_QUERY).fetchone()
            assert row is not None
            old_columns = {t: list(d["columns"]) for t, d in parse_description(row[0]).items()}
            conn.execute("SELECT eia_ensure_partitions(%s, %s)", (START, START + timedelta(days=1)))
            conn.commit()
        # The previous release had every table but those added since (0009: the shared throttle).
        assert {t.name for t in model_tables} - set(old_columns) == ADDED_SINCE
        model_tables = [t for t in model_tables if t.name in old_columns]

        # Two rows in every table, through the columns the previous release had (serial ids assigned).
        written: dict[str, list[dict[str, Any]]] = {}
        with engine(dsn).begin() as db:
            for table in model_tables:
                columns = [c for c in old_columns[table.name] if table.c[c] is not table.autoincrement_column]
                written[table.name] = [{c: value(table, c, i) for c in columns} for i in (0, 1)]
                db.execute(insert(table), written[table.name])

        report = apply_migrations(dsn)
        assert [m.version for m in report.applied] == [
            m.version for m in discover(report.flavor) if m.version > PREVIOUS_RELEASE
        ]
        assert apply_migrations(dsn).applied == ()  # and `eia init` again changes nothing

        with engine(dsn).connect() as db:
            for table in model_tables:
                kept = written[table.name]
                order = list(table.primary_key.columns) or [table.c.ingest_batch_id]
                stored = db.execute(select(*(table.c[c] for c in kept[0])).order_by(*order)).mappings().all()
                assert [dict(r) for r in stored] == kept, table.name
            # The columns 0007 added: the old batches have no per-reason counts, the first copy of a row its key.
            assert db.execute(select(table_of(tables.BATCH_LOG).c.quarantined_by_reason)).scalars().all() == [{}, {}]
            assert db.execute(
                select(table_of(tables.QUARANTINE).c.natural_key.is_not(None)).order_by("id")
            ).scalars().all() == [True, True]
            monthly = db.exec_driver_sql(f"SELECT sum(observation_count) FROM {tables.MONTHLY_AGGREGATES}").scalar()
            assert monthly == 2  # 0008 populated the aggregate from the kept rows

        # The typed read paths read the upgraded rows.
        with psycopg.connect(dsn) as conn:
            assert [e.reason for e in list_quarantine(conn)] == ["reason-1", "reason-0"]
            assert breaker_status(conn, "name-0").state == "open"
        assert outbox_stats(dsn).pending == 1  # row 1 was never sent


def table_of(name: str) -> Table:
    return SQLModel.metadata.tables[name]
