"""Least privilege (sql/common/0006_roles.sql): the reader only reads; the writer loads batches but
cannot change the schema, the migration history or the audit trail.

LOGIN users are created here as members of the two NOLOGIN group roles, as an administrator would.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from sql import SQL_DIR
from tasks.load.batch import LoadTargets, load_batch
from tasks.normalize.observation import NormalizeResult, Rejection
from tasks.store.migrations import recorded_flavor
from tasks.store.staging import BatchContext
from tests.quality.batches import HKG_GENERATION, clean_batch, observation

ROLES_SQL = SQL_DIR / "common" / "0006_roles.sql"


@dataclass(frozen=True)
class Logins:
    writer: str  # DSN of a LOGIN member of eia_writer
    reader: str  # DSN of a LOGIN member of eia_reader
    writer_name: str


@pytest.fixture
def logins(db: str) -> Iterator[Logins]:
    suffix = secrets.token_hex(4)
    password = secrets.token_hex(16)  # ignored by trust auth, required by password auth
    names = {"eia_writer": f"eia_t_ingest_{suffix}", "eia_reader": f"eia_t_analyst_{suffix}"}
    with psycopg.connect(db, autocommit=True) as conn:
        for group, name in names.items():
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                    sql.Identifier(name), sql.Literal(password), sql.Identifier(group)
                )
            )
    try:
        yield Logins(
            writer=make_conninfo(db, user=names["eia_writer"], password=password),
            reader=make_conninfo(db, user=names["eia_reader"], password=password),
            writer_name=names["eia_writer"],
        )
    finally:
        with psycopg.connect(db, autocommit=True) as conn:
            for name in names.values():
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def _denied(dsn: str, statement: str) -> bool:
    """True when the statement fails for lack of privilege (and it changed nothing)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def _tables(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'eia\\_%%' "
            "ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def test_the_group_roles_exist_and_cannot_log_in(db: str) -> None:
    with psycopg.connect(db) as conn:
        rows: dict[str, bool] = dict(
            conn.execute(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('eia_reader', 'eia_writer')"
            ).fetchall()
        )
    assert rows == {"eia_reader": False, "eia_writer": False}


def test_the_reader_reads_every_table_and_writes_nothing(logins: Logins, db: str) -> None:
    tables = _tables(db)
    assert "eia_series_timeseries" in tables and "eia_breaker_state" in tables
    with psycopg.connect(logins.reader) as conn:
        for table in tables:  # every migration's tables, including those of later migrations
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        # The aggregate may not be populated yet (plain PostgreSQL): ask for the privilege instead.
        assert conn.execute("SELECT has_table_privilege('eia_monthly_aggregates', 'SELECT')").fetchone() == (True,)

    assert _denied(
        logins.reader,
        "INSERT INTO eia_series_timeseries (series_id, period, period_end, raw_period, frequency, source, "
        "ingest_ts, ingest_batch_id) VALUES ('S', '2024-01-01', '2024-02-01', '2024-01', 'monthly', 'x', 1, 'b')",
    )
    assert _denied(logins.reader, "UPDATE eia_breaker_state SET state = 'closed'")
    assert _denied(logins.reader, "DELETE FROM eia_outbox")
    assert _denied(logins.reader, "INSERT INTO eia_audit_log (actor, action) VALUES ('me', 'breaker.reset')")
    assert _denied(logins.reader, "CREATE TABLE eia_reader_was_here (x int)")
    assert _denied(logins.reader, "SELECT eia_ensure_partitions(now(), now())")
    assert _denied(logins.reader, "CALL eia_refresh_aggregates()")


def test_the_writer_loads_a_series_batch_with_quarantine_outbox_and_new_partitions(logins: Logins, db: str) -> None:
    batch = clean_batch()
    # A period far from every other test's data: on plain PostgreSQL its yearly partition is new (0008).
    batch.append(observation(HKG_GENERATION, "annual", "1931", "0.5", "billion kilowatthours", dataset="INTL"))
    rejection = Rejection("bad_period", "period '2023-02-30' is not a calendar date", "S", "2023-02-30", "1", None)
    ctx = BatchContext.new("t-roles", "run-roles", "roles-test")
    targets = LoadTargets(outbox_topic="series", dlq_topic="dlq", source="eia-api-v2", dataset=None)

    outcome = load_batch(logins.writer, ctx, NormalizeResult(observations=batch, rejections=[rejection]), targets)

    assert outcome.passed, outcome.failed_checks
    assert (outcome.counts.inserted, outcome.counts.quarantined) == (len(batch), 1)
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM eia_series_timeseries WHERE tenant_id = 't-roles'").fetchone() == (
            len(batch),
        )
        assert conn.execute("SELECT count(*) FROM eia_outbox").fetchone() == (len(batch) + 1,)
        assert conn.execute("SELECT count(*) FROM eia_series_staging").fetchone() == (0,)
        flavor = recorded_flavor(conn)
        owner = conn.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'eia_series_timeseries_y1931'"
        ).fetchone()
    if flavor == "postgres":
        # Created through the SECURITY DEFINER function: owned by the table's owner, not the writer,
        # and covered by the default privileges.
        assert owner is not None and owner[0] != logins.writer_name
        with psycopg.connect(logins.reader) as conn:
            assert conn.execute("SELECT count(*) FROM eia_series_timeseries_y1931").fetchone() == (1,)
        with psycopg.connect(logins.writer, autocommit=True) as conn:
            conn.execute("CALL eia_refresh_aggregates()")


def test_the_writer_cannot_change_the_schema_the_migration_history_or_the_audit_trail(logins: Logins) -> None:
    assert _denied(logins.writer, "DROP TABLE eia_series_timeseries")
    assert _denied(logins.writer, "ALTER TABLE eia_series_timeseries ADD COLUMN x int")
    assert _denied(logins.writer, "TRUNCATE eia_series_timeseries")
    assert _denied(logins.writer, "CREATE TABLE eia_writer_was_here (x int)")
    assert _denied(logins.writer, "DELETE FROM eia_schema_migrations")
    assert _denied(logins.writer, "UPDATE eia_audit_log SET actor = 'someone else'")
    assert _denied(logins.writer, "DELETE FROM eia_audit_log")
    assert _denied(logins.writer, "SELECT eia_apply_retention(1)")
    with psycopg.connect(logins.writer, autocommit=True) as conn:  # appending to the audit log is allowed
        conn.execute("INSERT INTO eia_audit_log (actor, action) VALUES ('eia-test', 'breaker.reset')")


def test_rerunning_the_roles_migration_changes_nothing(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        before = conn.execute(
            "SELECT relname, relacl::text FROM pg_class WHERE relname LIKE 'eia\\_%%' ORDER BY 1"
        ).fetchall()
        conn.execute(ROLES_SQL.read_text(encoding="utf-8").encode())
        after = conn.execute(
            "SELECT relname, relacl::text FROM pg_class WHERE relname LIKE 'eia\\_%%' ORDER BY 1"
        ).fetchall()
    assert after == before
