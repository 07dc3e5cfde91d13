"""Durable bulk-load state: the loaded version of each dataset, and the checkpoint of an unfinished load.

The checkpoint moves only inside a batch's merge transaction (`advance_checkpoint` runs as
load_batch's `after_merge`), so it never claims rows that did not commit and a crashed run
resumes exactly after the last merged batch. Its counts are added from the batch's own log row
(written earlier in the same transaction), so the totals of a load interrupted three times still
reconcile. A version is recorded as loaded, and the checkpoint removed, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from tasks.store.runlog import COUNT_COLUMNS, COUNT_FIELDS, COUNT_PARAMETERS, Counts
from tasks.store.tables import BATCH_LOG, BULK_CHECKPOINTS, BULK_VERSIONS


@dataclass(frozen=True, slots=True)
class Position:
    """Where loading continues: line `line_number` (starting at byte `byte_offset` of the member),
    of which the first `items_done` items (observations, then rejections) are already committed."""

    line_number: int = 0
    byte_offset: int = 0
    items_done: int = 0


@dataclass(frozen=True, slots=True)
class ArchiveVersion:
    """Which archive a load is reading: the manifest's stamp plus the bytes' identity."""

    last_updated: str
    sha256: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    dataset: str
    version: ArchiveVersion
    position: Position
    batches: int
    counts: Counts
    run_id: str | None
    started_at: datetime


@dataclass(frozen=True, slots=True)
class LoadedVersion:
    dataset: str
    last_updated: str
    etag: str | None
    last_modified: str | None
    archive_sha256: str | None
    loaded_at: datetime


def read_checkpoint(conn: psycopg.Connection[TupleRow], tenant_id: str, dataset: str) -> Checkpoint | None:
    row = conn.execute(
        f"""SELECT last_updated, archive_sha256, etag, last_modified, line_number, byte_offset, items_done,
                   batches, run_id, started_at, {COUNT_COLUMNS}
            FROM {BULK_CHECKPOINTS} WHERE tenant_id = %s AND dataset = %s""",
        (tenant_id, dataset),
    ).fetchone()
    if row is None:
        return None
    return Checkpoint(
        dataset=dataset,
        version=ArchiveVersion(row[0], row[1], row[2], row[3]),
        position=Position(int(row[4]), int(row[5]), int(row[6])),
        batches=int(row[7]),
        counts=Counts.of(row[10:]),
        run_id=row[8],
        started_at=row[9],
    )


def start_checkpoint(
    conn: psycopg.Connection[TupleRow], tenant_id: str, dataset: str, version: ArchiveVersion, run_id: str
) -> None:
    """A fresh checkpoint at the start of the archive, replacing any other (stale) one."""
    zero_counts = ", ".join(f"{name} = 0" for name in COUNT_FIELDS)
    conn.execute(
        f"""INSERT INTO {BULK_CHECKPOINTS} (tenant_id, dataset, last_updated, archive_sha256, etag,
                last_modified, run_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (tenant_id, dataset) DO UPDATE SET
                last_updated = excluded.last_updated, archive_sha256 = excluded.archive_sha256,
                etag = excluded.etag, last_modified = excluded.last_modified, line_number = 0,
                byte_offset = 0, items_done = 0, batches = 0, {zero_counts}, run_id = excluded.run_id,
                started_at = now(), updated_at = now()""",
        (tenant_id, dataset, version.last_updated, version.sha256, version.etag, version.last_modified, run_id),
    )


def touch_checkpoint(
    conn: psycopg.Connection[TupleRow], tenant_id: str, dataset: str, version: ArchiveVersion, run_id: str
) -> None:
    """Records that `run_id` now owns the load, with the validators of the copy it resumes from."""
    conn.execute(
        f"""UPDATE {BULK_CHECKPOINTS} SET run_id = %s, etag = %s, last_modified = %s, updated_at = now()
            WHERE tenant_id = %s AND dataset = %s""",
        (run_id, version.etag, version.last_modified, tenant_id, dataset),
    )


def advance_checkpoint(
    conn: psycopg.Connection[TupleRow], tenant_id: str, dataset: str, batch_id: str, position: Position
) -> None:
    """Moves the checkpoint past a batch; call inside the batch's merge transaction, after its log row."""
    sets = ", ".join(f"{c} = k.{c} + b.{c}" for c in COUNT_FIELDS)
    cur = conn.execute(
        f"""UPDATE {BULK_CHECKPOINTS} k SET line_number = %s, byte_offset = %s, items_done = %s,
                batches = k.batches + 1, {sets}, updated_at = now()
            FROM {BATCH_LOG} b
            WHERE k.tenant_id = %s AND k.dataset = %s AND b.batch_id = %s""",
        (position.line_number, position.byte_offset, position.items_done, tenant_id, dataset, batch_id),
    )
    if cur.rowcount != 1:  # an invariant: the checkpoint and the batch log row exist in this transaction
        raise RuntimeError(f"checkpoint of {dataset} was not advanced past batch {batch_id}")


def discard_checkpoint(conn: psycopg.Connection[TupleRow], tenant_id: str, dataset: str) -> None:
    conn.execute(f"DELETE FROM {BULK_CHECKPOINTS} WHERE tenant_id = %s AND dataset = %s", (tenant_id, dataset))


def last_loaded_version(conn: psycopg.Connection[TupleRow], tenant_id: str, dataset: str) -> LoadedVersion | None:
    row = conn.execute(
        f"""SELECT last_updated, etag, last_modified, archive_sha256, loaded_at FROM {BULK_VERSIONS}
            WHERE tenant_id = %s AND dataset = %s ORDER BY loaded_at DESC LIMIT 1""",
        (tenant_id, dataset),
    ).fetchone()
    if row is None:
        return None
    return LoadedVersion(dataset, row[0], row[1], row[2], row[3], row[4])


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """What is recorded when a dataset version is done."""

    dataset: str
    version: ArchiveVersion
    archive_bytes: int | None
    member_bytes: int | None
    lines: int
    batches: int
    counts: Counts
    run_id: str
    started_at: datetime | None


def mark_loaded(conn: psycopg.Connection[TupleRow], tenant_id: str, record: VersionRecord) -> None:
    """Records the version as loaded and removes the dataset's checkpoint; call inside a transaction."""
    v = record.version
    counts = ", ".join(f"{c} = excluded.{c}" for c in COUNT_FIELDS)
    conn.execute(
        f"""INSERT INTO {BULK_VERSIONS} (tenant_id, dataset, last_updated, etag, last_modified, archive_sha256,
                archive_bytes, member_bytes, lines, batches, {COUNT_COLUMNS}, run_id, started_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {COUNT_PARAMETERS}, %s, %s)
            ON CONFLICT (tenant_id, dataset, last_updated) DO UPDATE SET
                etag = excluded.etag, last_modified = excluded.last_modified,
                archive_sha256 = excluded.archive_sha256, archive_bytes = excluded.archive_bytes,
                member_bytes = excluded.member_bytes, lines = excluded.lines, batches = excluded.batches,
                {counts}, run_id = excluded.run_id, started_at = excluded.started_at, loaded_at = now()""",
        (
            tenant_id,
            record.dataset,
            v.last_updated,
            v.etag,
            v.last_modified,
            v.sha256,
            record.archive_bytes,
            record.member_bytes,
            record.lines,
            record.batches,
            *record.counts.values(),
            record.run_id,
            record.started_at,
        ),
    )
    discard_checkpoint(conn, tenant_id, record.dataset)
