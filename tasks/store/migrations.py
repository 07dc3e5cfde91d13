"""Versioned SQL migrations: applied once, in order, recorded with a checksum.

TimescaleDB is used when the server offers the extension; otherwise the plain-PostgreSQL files are
applied (native partitions, a materialized view). The choice is recorded with each migration so a
database never mixes flavours.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from psycopg.rows import TupleRow

from sql import SQL_DIR
from tasks.store.tables import MIGRATIONS

Flavor = Literal["timescale", "postgres"]
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6E1A_0001  # advisory lock id: one migrator at a time


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class MigrationReport:
    flavor: Flavor
    applied: tuple[Migration, ...]
    current_version: int


def discover(flavor: Flavor, root: Path = SQL_DIR) -> list[Migration]:
    """The migrations for a flavour: common files plus that flavour's files, by version."""
    found: dict[int, Migration] = {}
    for folder in (root / "common", root / flavor):
        for path in sorted(folder.glob("*.sql")):
            match = _NAME.match(path.name)
            if not match:
                raise MigrationError(f"migration file name {path.name!r} is not NNNN_name.sql")
            version = int(match.group(1))
            if version in found:
                raise MigrationError(f"migration version {version} exists twice: {found[version].path}, {path}")
            found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def detect_flavor(conn: psycopg.Connection[TupleRow]) -> Flavor:
    """TimescaleDB when the extension is installed or can be; plain PostgreSQL otherwise."""
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return "timescale" if row else "postgres"


def _ensure_table(conn: psycopg.Connection[TupleRow]) -> None:
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {MIGRATIONS} (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            flavor     TEXT NOT NULL,
            checksum   TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
    )


def _recorded(conn: psycopg.Connection[TupleRow]) -> dict[int, tuple[str, str]]:
    rows = conn.execute(f"SELECT version, flavor, checksum FROM {MIGRATIONS}").fetchall()
    return {int(v): (str(f), str(c)) for v, f, c in rows}


def recorded_flavor(conn: psycopg.Connection[TupleRow]) -> Flavor | None:
    exists = conn.execute("SELECT to_regclass(%s)", (MIGRATIONS,)).fetchone()
    if not exists or exists[0] is None:
        return None
    row = conn.execute(f"SELECT flavor FROM {MIGRATIONS} ORDER BY version LIMIT 1").fetchone()
    return None if row is None else "timescale" if row[0] == "timescale" else "postgres"


def pending(conn: psycopg.Connection[TupleRow]) -> list[Migration]:
    """Migrations not yet applied (empty means the schema is current). Read-only."""
    flavor = recorded_flavor(conn) or detect_flavor(conn)
    done = _recorded(conn) if recorded_flavor(conn) else {}
    return [m for m in discover(flavor) if m.version not in done]


def apply_migrations(dsn: str, flavor: Flavor | None = None, *, root: Path = SQL_DIR) -> MigrationReport:
    """Applies every pending migration, each in its own transaction; safe to run concurrently and repeatedly.

    `root` is the migrations folder (tests point it at an older release's files to build a database
    as that release left it)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            _ensure_table(conn)
            chosen = recorded_flavor(conn) or flavor or detect_flavor(conn)
            if chosen == "timescale":
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            done = _recorded(conn)
            applied: list[Migration] = []
            for migration in discover(chosen, root):
                if migration.version in done:
                    _, checksum = done[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{migration.name} was changed after it was "
                            "applied; add a new migration instead of editing an applied one"
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(migration.sql.encode())  # type: ignore[call-overload]
                        conn.execute(
                            f"INSERT INTO {MIGRATIONS} (version, name, flavor, checksum) VALUES (%s, %s, %s, %s)",
                            (migration.version, migration.name, chosen, migration.checksum),
                        )
                except psycopg.OperationalError:
                    raise  # the connection itself failed: the caller names the database setting
                except psycopg.Error as exc:
                    # Rolled back as a whole; say which file failed and why, without a driver traceback.
                    reason = exc.diag.message_primary or str(exc)
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} ({chosen}) failed and was rolled "
                        f"back: {reason}"
                    ) from None
                applied.append(migration)
            current = max([m.version for m in discover(chosen, root)], default=0)
            return MigrationReport(chosen, tuple(applied), current)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
