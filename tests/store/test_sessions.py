"""The read paths' sessions: on the caller's connection they read inside its transaction and leave it
to its owner; on a DSN they connect through `database.connect`; errors stay psycopg's and ours."""

from __future__ import annotations

import re

import psycopg
import pytest
from sqlmodel import Session, col, func, select

from tasks.store import sessions
from tasks.store.database import DatabaseUnavailable
from tasks.store.models import AuditEntry
from tasks.store.tables import AUDIT_LOG
from tests.support.services import fresh_database


def _audit_rows(session: Session) -> int:
    return session.exec(select(func.count()).select_from(AuditEntry)).one()


def test_a_borrowed_session_reads_inside_the_callers_transaction_and_leaves_it_open(db: str) -> None:
    with psycopg.connect(db) as conn:
        conn.execute(f"INSERT INTO {AUDIT_LOG} (actor, action) VALUES ('ops', 'uncommitted')")
        with sessions.borrowed(conn) as session:
            assert _audit_rows(session) == 1  # sees the caller's uncommitted row
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.commit()
    with psycopg.connect(db) as other:
        assert other.execute(f"SELECT count(*) FROM {AUDIT_LOG}").fetchone() == (1,)


def test_a_borrowed_session_works_inside_a_transaction_block_and_on_autocommit(db: str) -> None:
    with psycopg.connect(db) as conn:
        with conn.transaction():  # psycopg forbids commit() and rollback() in here
            conn.execute(f"INSERT INTO {AUDIT_LOG} (actor, action) VALUES ('ops', 'in a block')")
            with sessions.borrowed(conn) as session:
                actions = session.exec(select(AuditEntry.action)).all()
            assert actions == ["in a block"]
        assert not conn.closed
    with psycopg.connect(db, autocommit=True) as conn, sessions.borrowed(conn) as session:
        assert _audit_rows(session) == 1


def test_a_database_error_reaches_the_caller_as_psycopgs(pg_dsn: str) -> None:
    with fresh_database(pg_dsn, "eia_sessions_unmigrated") as dsn, psycopg.connect(dsn) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable), sessions.borrowed(conn) as session:
            _audit_rows(session)
        with pytest.raises(psycopg.errors.UndefinedTable), sessions.session(dsn) as session:
            _audit_rows(session)


def test_a_dsn_session_connects_through_database_connect(db: str) -> None:
    with sessions.session(db) as session:
        assert session.exec(select(col(AuditEntry.id))).all() == []
    assert sessions.engine(db) is sessions.engine(db)
    nowhere = "postgresql://eia@127.0.0.1:1/nowhere?connect_timeout=2"
    unavailable = pytest.raises(DatabaseUnavailable, match=re.escape("database at 127.0.0.1/nowhere is unavailable"))
    with unavailable, sessions.session(nowhere) as session:
        _audit_rows(session)


def test_engines_are_cached_per_dsn_up_to_a_bound() -> None:
    sessions.dispose_engines()
    first = sessions.engine("postgresql:///eia_0")
    for i in range(1, sessions.MAX_ENGINES + 1):
        sessions.engine(f"postgresql:///eia_{i}")
    assert sessions.engine("postgresql:///eia_0") is not first  # the oldest was disposed
    sessions.dispose_engines()
