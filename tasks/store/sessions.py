"""SQLModel sessions for the read paths, over the pipeline's own connections.

Why it exists: the reports, the collector and the monitors read the tables with `select()` over the
models (`models`), and they must keep what `database.connect` gives every connection: the embedded
server started on demand, the TLS checks and the one-line errors. Two ways in:

- `session(dsn)`: a session on an engine cached per DSN whose connections come from
  `database.connect(dsn)`. No pool (`NullPool`): a connection lives as long as the session, as the
  hand-written reads' connections did. `dispose_engines()` (also at exit) drops the cache.
- `borrowed(conn)`: a session over a psycopg connection the caller already holds, for the read
  functions that take one. Its statements run on that connection, inside the caller's transaction
  and with its settings (the collector's statement timeout); the session never commits, rolls back
  or closes it.

Either way a database error reaches the caller as the psycopg error it would have raised before
(callers catch `psycopg.Error`), not wrapped in SQLAlchemy's. `rows(session, statement)` runs a
select wider than `sqlmodel.select` types; `total(...)` is `coalesce(sum(...), 0)`.
"""

from __future__ import annotations

import atexit
import contextlib
import operator
import threading
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from functools import reduce
from typing import Any, Final, TypeVarTuple

import psycopg
from psycopg.rows import TupleRow
from sqlalchemy import ColumnElement, Engine, Select, create_engine, func
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from tasks.store.database import connect

_Ts = TypeVarTuple("_Ts")

# No URL: connections come from the creator, so the DSN (and its password) never reaches SQLAlchemy.
_URL: Final = "postgresql+psycopg://"
# No table uses hstore: the dialect need not look the type up on its first connection.
_OPTIONS: Final[dict[str, Any]] = {"use_native_hstore": False}
# Engines kept per DSN; the oldest is disposed beyond this (tests create many databases).
MAX_ENGINES: Final = 16

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_lent: ContextVar[psycopg.Connection[TupleRow] | None] = ContextVar("eia_lent_connection", default=None)


def engine(dsn: str) -> Engine:
    """The engine for `dsn` (cached): each connection is `database.connect(dsn)`."""
    with _lock:
        found = _engines.pop(dsn, None)
        if found is None:
            found = create_engine(_URL, creator=lambda: connect(dsn), poolclass=NullPool, **_OPTIONS)
            while len(_engines) >= MAX_ENGINES:
                _engines.pop(next(iter(_engines))).dispose()
        _engines[dsn] = found  # most recently used last
        return found


def dispose_engines() -> None:
    """Disposes every cached engine (they hold no idle connections; this drops the cache)."""
    with _lock:
        for cached in _engines.values():
            cached.dispose()
        _engines.clear()


atexit.register(dispose_engines)


@contextlib.contextmanager
def _driver_errors() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if isinstance(exc.orig, psycopg.Error):
            raise exc.orig from None
        raise


@contextlib.contextmanager
def session(dsn: str) -> Iterator[Session]:
    """A read session on its own connection to `dsn`, closed (and its transaction ended) on exit."""
    with _driver_errors(), Session(engine(dsn)) as s:
        yield s


class _Lent:
    """The caller's connection as SQLAlchemy's pool sees it: every attribute is the connection's, but
    ending its transaction or closing it is left to its owner, and no notice handler is added."""

    def __init__(self, conn: psycopg.Connection[TupleRow]) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def commit(self) -> None:
        raise RuntimeError("a borrowed session only reads: the connection's owner commits")

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass

    def add_notice_handler(self, _handler: Any) -> None:
        pass


def _lend() -> _Lent:
    conn = _lent.get()
    if conn is None:
        raise RuntimeError("no connection lent: use tasks.store.sessions.borrowed(conn)")
    return _Lent(conn)


# One engine for every lent connection: the dialect learns the server once (its first connection).
_borrowing: Final = create_engine(_URL, creator=_lend, poolclass=NullPool, pool_reset_on_return=None, **_OPTIONS)


@contextlib.contextmanager
def borrowed(conn: psycopg.Connection[TupleRow]) -> Iterator[Session]:
    """A read session whose statements run on `conn`, in its current transaction."""
    token = _lent.set(conn)
    try:
        with _driver_errors(), Session(_borrowing) as s:
            yield s
    finally:
        _lent.reset(token)


def rows(session: Session, statement: Select[*_Ts]) -> Sequence[tuple[*_Ts]]:
    """The rows of a select wider than `sqlmodel.select` types (four columns; SQLAlchemy's `select`
    types ten), as typed tuples."""
    return session.connection().execute(statement).tuples().all()


def total(*columns: Any) -> ColumnElement[Any]:
    """`coalesce(sum(a + b + ...), 0)`: the sum of the columns over the rows, 0 over none."""
    return func.coalesce(func.sum(reduce(operator.add, columns)), 0)
