"""The limit L of issue 16: what PostgreSQL itself needs to load the same rows, with nothing of ours.

The rows are the project's own (the normalizer's observations, with the loader's ingest columns), so
L writes exactly the bytes `eia run bulk` writes. They are parsed once, before anything is timed,
and kept as a PostgreSQL COPY text file (written by COPY TO from a scratch database, so the
encoding is PostgreSQL's own). A try is then, on a fresh database:

1. COPY the file into an UNLOGGED staging table with no index (psycopg 3, 1 MiB writes), commit;
2. one `INSERT … SELECT … ON CONFLICT (tenant_id, series_id, period) DO UPDATE … WHERE value IS
   DISTINCT FROM excluded.value`, commit.

Target "limit": a table with the time-series table's columns and primary key, no partitions and no
secondary index. Target "own": the project's partitioned `eia_series_timeseries` with its secondary
indexes (migrations applied, the monthly partitions the rows need created before the clock starts),
which shows what the partitions and indexes cost. Both use the same statement.
"""

from __future__ import annotations

import json
import operator
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import psycopg

from tasks.normalize.bulk_lines import parse_bulk_line
from tasks.normalize.observation import INGEST_FIELDS, OBSERVATION_FIELDS, STAGED_COLUMNS
from tasks.store.migrations import apply_migrations
from tests.benchmarks import pg
from tests.benchmarks.archives import Archive
from tests.benchmarks.pg import Loaded, Server
from tests.benchmarks.sampling import Quiet, QuietPolicy, wait_for_quiet

Target = Literal["limit", "own"]
STAGING = "bench_staging"
LIMIT_TABLE = "bench_limit_timeseries"
OWN_TABLE = "eia_series_timeseries"
_KEY = ("tenant_id", "series_id", "period")
_INGEST = ("aurum-prod", 1_764_547_200_000_000, "bench-limit", "bench", "bench-limit-batch")
# The row layout below: the tenant, the observation's fields in order, then the other ingest columns.
_ROW_LAYOUT = ("tenant_id", *OBSERVATION_FIELDS, *INGEST_FIELDS[1:])
if _ROW_LAYOUT != STAGED_COLUMNS:
    raise RuntimeError("STAGED_COLUMNS changed its layout: update tests/benchmarks/limit.py")
_METADATA = OBSERVATION_FIELDS.index("metadata")


@dataclass(frozen=True)
class Prepared:
    copy_file: Path
    rows: int
    months: list[datetime]  # the distinct UTC months of the rows' periods (the partitions "own" needs)
    staging_ddl: str
    limit_ddl: str


@dataclass(frozen=True)
class Try:
    copy_s: float
    upsert_s: float
    wal_bytes: int
    quiet: Quiet

    @property
    def wall_s(self) -> float:
        return self.copy_s + self.upsert_s


@dataclass(frozen=True)
class LimitResult:
    target: Target
    tries: list[Try]
    loaded: Loaded

    @property
    def median(self) -> Try:
        """The try with the median wall time (the lower middle one for an even count)."""
        ordered = sorted(self.tries, key=lambda t: t.wall_s)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def spread(self) -> str:
        walls = [t.wall_s for t in self.tries]
        return f"{min(walls):.1f} to {max(walls):.1f} s" if len(walls) > 1 else ""

    def rate(self) -> float:
        return self.loaded.rows / self.median.wall_s


def _rows(archives: list[Archive]) -> Iterator[tuple[object, ...]]:
    getter = operator.attrgetter(*OBSERVATION_FIELDS)
    tenant, *ingest = _INGEST
    for archive in archives:
        with zipfile.ZipFile(archive.path) as zf, zf.open(f"{archive.code}.txt") as member:
            for line in member:
                parsed = parse_bulk_line(line.rstrip(b"\n"), archive.code)
                if parsed.kind != "series":
                    continue
                if parsed.result.rejections:
                    raise RuntimeError(f"{archive.code}: the synthetic archive has rejected points")
                encoded: dict[int, str | None] = {}
                for obs in parsed.result.observations:
                    values = getter(obs)
                    meta = values[_METADATA]
                    key = id(meta)
                    if key not in encoded:
                        encoded[key] = None if meta is None else json.dumps(meta, separators=(",", ":"))
                    yield (tenant, *values[:_METADATA], encoded[key], *values[_METADATA + 1 :], *ingest)


def prepare(server: Server, template_dsn: str, archives: list[Archive], folder: Path) -> Prepared:
    """Parses the archives and writes their rows as a COPY text file (not timed)."""
    staging_cols = pg.column_definitions(template_dsn, "eia_series_staging")
    table_cols = pg.column_definitions(template_dsn, OWN_TABLE)
    staging_ddl = f"CREATE UNLOGGED TABLE {STAGING} ({', '.join(staging_cols)})"
    limit_ddl = f"CREATE TABLE {LIMIT_TABLE} ({', '.join(table_cols)}, PRIMARY KEY ({', '.join(_KEY)}))"
    dsn = server.create("bench_prep")
    copy_file = folder / "rows.copy"
    cols = ", ".join(STAGED_COLUMNS)
    with psycopg.connect(dsn) as conn:
        conn.execute(staging_ddl)
        with conn.cursor() as cur, cur.copy(f"COPY {STAGING} ({cols}) FROM STDIN") as copy:
            for row in _rows(archives):
                copy.write_row(row)
        conn.commit()
        with copy_file.open("wb") as out, conn.cursor() as cur, cur.copy(f"COPY {STAGING} ({cols}) TO STDOUT") as copy:
            for block in copy:
                out.write(block)
        stats = conn.execute(
            f"SELECT count(*), array_agg(DISTINCT date_trunc('month', period, 'UTC')) FROM {STAGING}"
        ).fetchone()
    server.drop("bench_prep")
    assert stats is not None
    return Prepared(copy_file, int(stats[0]), list(stats[1] or []), staging_ddl, limit_ddl)


def _upsert_sql(table: str) -> str:
    cols = ", ".join(STAGED_COLUMNS)
    sets = ", ".join(f"{c} = excluded.{c}" for c in STAGED_COLUMNS if c not in _KEY)
    return (
        f"INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM {STAGING} "
        f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {sets}, revision = t.revision + 1, updated_at = now() "
        "WHERE t.value IS DISTINCT FROM excluded.value"
    )


def _one_try(server: Server, prepared: Prepared, target: Target, policy: QuietPolicy) -> tuple[Try, Loaded]:
    name = f"bench_{target}"
    dsn = server.create(name)
    try:
        if target == "own":
            apply_migrations(dsn)
            with psycopg.connect(dsn) as conn:
                conn.execute("SELECT eia_ensure_partitions(%s::timestamptz[])", (prepared.months,))
        table = OWN_TABLE if target == "own" else LIMIT_TABLE
        with psycopg.connect(dsn) as conn:
            conn.execute(prepared.staging_ddl)
            if target == "limit":
                conn.execute(prepared.limit_ddl)
        upsert = _upsert_sql(table)
        copy_sql = f"COPY {STAGING} ({', '.join(STAGED_COLUMNS)}) FROM STDIN"
        server.checkpoint()
        quiet = wait_for_quiet(policy)
        wal = server.wal_lsn()
        with psycopg.connect(dsn) as conn, prepared.copy_file.open("rb") as source:
            started = time.perf_counter()
            with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
            conn.commit()
            copied = time.perf_counter()
            conn.execute(upsert)
            conn.commit()
            done = time.perf_counter()
        result = Try(copied - started, done - copied, server.wal_bytes(wal), quiet)
        return result, pg.loaded(dsn, table)
    finally:
        server.drop(name)


def measure(server: Server, prepared: Prepared, target: Target, tries: int, policy: QuietPolicy) -> LimitResult:
    """`tries` tries on fresh databases; every one must load all the prepared rows."""
    done: list[Try] = []
    first: Loaded | None = None
    for i in range(tries):
        result, rows = _one_try(server, prepared, target, policy)
        if rows.rows != prepared.rows or (first is not None and rows != first):
            raise RuntimeError(f"L ({target}) try {i + 1} loaded {rows}, expected {prepared.rows:,} rows like try 1")
        first = first or rows
        done.append(result)
        print(
            f"    L ({target}) try {i + 1}: COPY {result.copy_s:.1f} s + upsert {result.upsert_s:.1f} s = "
            f"{result.wall_s:.1f} s, {prepared.rows / result.wall_s:,.0f} rows/s (load {result.quiet.describe()})",
            flush=True,
        )
    assert first is not None
    return LimitResult(target, done, first)
