"""Quarantine replay: after a fix, quarantined rows go through normalize → gate → merge again.

Why it exists: a row is quarantined because something was wrong: EIA sent a unit the unit table did
not know, a value a rule refused, a period a parser could not read. Once the cause is fixed (a new
row in units.csv, a corrected rule or parser), `eia quarantine replay` loads those rows through the
same path as any batch (`tasks.load.batch.load_batch`: stage, Soda gate, merge, outbox), so a
replayed row is held to every rule of the registry, and removes them from quarantine in the same
transaction as their merge. Nothing is ever lost on the way:

* The quarantine rows a batch takes are deleted first in the load's final transaction
  (`before_write`), so the rows that now pass are merged and leave quarantine together, and the rows
  a rule still refuses are re-filed under the replay batch, with the reasons the rules give now: the
  quarantine then holds each row once, never twice, and the replay batch's log reconciles. A batch
  the gate blocks as a whole (a batch-level rule, or too many offending rows) is re-filed whole.
  Kafka's dead-letter topic is not told twice: replay batches write no DLQ messages.
* A row that cannot be rebuilt, or that its normalizer rejects again, stays exactly as it was.
* If any replayed quarantine row disappeared meanwhile (another replay, a manual delete), the
  transaction is rolled back (`ReplayConflict`); an advisory lock keeps two replays apart.

How a quarantined row is rebuilt:

* Rows the gate quarantined (the reason is a rule name or `batch_blocked`) carry the staged row as
  payload. It becomes an Observation again through `identity.series_context`, the one place
  observations are built, so the canonical unit, currency, conversion factor and canonical value are
  re-derived from the unit table as it is now; everything else stays as EIA sent it.
* Rows a normalizer rejected carry EIA's raw input and go through the same normalizer again: an API
  route row with a catalog entry rebuilt from its series id (`EIA2:<route>:<column>:<frequency>:
  <facets>`, with the packaged catalog's area and sector facets for that route), an API seriesid row
  with the frequency of its v1 id, a bulk line stored whole. Not replayable: repeats
  (`duplicate_in_response`: the first occurrence was loaded), rows without a series id, bulk lines
  stored cut or altered, bulk data points (their series' unit and frequency are not stored).

Order and newer data: rows replay oldest first. When several quarantined rows hold the same period
of a series (fetched on different runs), they load in successive batches, so the newest ends up
stored and the older ones in the revision history, as the original runs would have left them; after
a blocked batch, the later batches of the same source and dataset wait for the next replay. A row
whose period the table already holds from a newer fetch is not replayed (`superseded`): loading it
would put an older EIA value over a newer one. Replayed rows record where they came from in their
metadata (`quarantine_replay`), which is how a later replay knows when their data was fetched.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

import psycopg
from psycopg.rows import TupleRow

from tasks.core.catalog import CatalogEntry, load_catalog
from tasks.load.batch import BatchOutcome, LoadTargets, load_batch
from tasks.normalize.api_rows import normalize_route_rows, normalize_seriesid_rows
from tasks.normalize.bulk_lines import MAX_LINE_PAYLOAD, parse_bulk_line
from tasks.normalize.identity import ROUTE_ID_PREFIX, series_context
from tasks.normalize.observation import (
    BULK_FREQUENCY_CODES,
    FREQUENCIES,
    SOURCE_API,
    SOURCE_BULK,
    NormalizeResult,
    Observation,
)
from tasks.normalize.periods import Period
from tasks.quality.gate import BATCH_BLOCKED
from tasks.quality.rules import RULES
from tasks.store.audit import write_audit
from tasks.store.database import connect, transaction
from tasks.store.staging import BatchContext
from tasks.store.tables import QUARANTINE, TIMESERIES

REPLAY_JOB: Final = "eia_quarantine_replay"
# Quarantine rows per replay batch (a batch only ends between original batches, so it can be larger).
DEFAULT_BATCH_ROWS: Final = 10_000
# Quarantine rows one replay takes (the oldest; the rest wait for the next one): bounds its memory.
DEFAULT_MAX_ROWS: Final = 100_000
METADATA_KEY: Final = "quarantine_replay"
AUDIT_ACTION: Final = "quarantine.replay"
_LOCK: Final = "eia_quarantine_replay"
GATE_REASONS: Final = frozenset({r.name for r in RULES} | {BATCH_BLOCKED})
# Normalizer rejections a replay must not load, and why.
NOT_REPLAYABLE: Final[Mapping[str, str]] = {
    "duplicate_in_response": "a repeat of a period whose first occurrence was loaded",
    "line_too_long": "the stored line is cut at the payload limit",
    "nul_character": "the stored line was altered (its NUL escapes replaced)",
    "invalid_utf8": "the stored line was altered (undecodable bytes replaced)",
}


class ReplayError(RuntimeError):
    """A replay could not run; the message says why (an expected fault: no stack trace needed)."""


class ReplayConflict(ReplayError):
    """Quarantine rows being replayed changed meanwhile; the batch was rolled back."""


@dataclass(frozen=True, slots=True)
class ReplayTargets:
    """Where replayed rows are announced and which ones are kept, as for the flows."""

    outbox_topics: Mapping[str, str | None] = field(default_factory=dict)  # per source; None: Kafka off
    retention_years: int = 0


@dataclass(slots=True)
class ReplayBatch:
    """One replay batch: the quarantine rows it took and what the gate and the merge made of them."""

    batch_id: str
    source: str
    dataset: str | None
    quarantine_ids: list[int]
    observations: int
    passed: bool
    failed_checks: list[str]
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    skipped: int


@dataclass(slots=True)
class ReplayResult:
    """What a replay did. Of the `selected` quarantine rows, `loaded` left quarantine with their merge;
    every other one is still there: `requarantined` (re-filed by a failing gate), `rejected` (their
    normalizer refused them again), `superseded`, `held_back` and `not_replayable` (left untouched)."""

    selected: int = 0
    remaining: int = 0  # matching rows left for the next replay (beyond max_rows)
    replayed: int = 0  # rows rebuilt and sent through the gate
    loaded: int = 0
    requarantined: int = 0
    rejected: int = 0
    superseded: int = 0
    held_back: int = 0
    not_replayable: dict[str, int] = field(default_factory=dict)  # why -> rows
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # observations outside the retention horizon (their rows still leave quarantine)
    batches: list[ReplayBatch] = field(default_factory=list)

    @property
    def still_quarantined(self) -> int:
        return self.selected - self.loaded

    def as_dict(self) -> dict[str, Any]:
        return {
            "selected": self.selected,
            "remaining": self.remaining,
            "replayed": self.replayed,
            "loaded": self.loaded,
            "still_quarantined": self.still_quarantined,
            "requarantined": self.requarantined,
            "rejected": self.rejected,
            "superseded": self.superseded,
            "held_back": self.held_back,
            "not_replayable": dict(self.not_replayable),
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "batches": [
                {
                    "batch_id": b.batch_id,
                    "source": b.source,
                    "dataset": b.dataset,
                    "rows": len(b.quarantine_ids),
                    "observations": b.observations,
                    "passed": b.passed,
                    "failed_checks": b.failed_checks,
                }
                for b in self.batches
            ],
        }


@dataclass(slots=True)
class _Row:
    """A quarantine row selected for replay."""

    id: int
    series_id: str | None
    raw_period: str | None
    reason: str
    source: str
    dataset: str | None
    payload: Any
    batch_id: str
    quarantined_at: datetime


@dataclass(slots=True)
class _Rebuilt:
    row: _Row
    observations: list[Observation]
    fetched: datetime  # when the data was fetched at the latest: its first quarantine


# --- rebuilding observations -------------------------------------------------------------------------


class _NotReplayable(Exception):
    """The row cannot be rebuilt; the message says why (it stays in quarantine untouched)."""


class _Rejected(Exception):
    """The normalizer rejected the row again (it stays in quarantine untouched)."""


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _NotReplayable(f"the stored value {value!r} is not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):  # how JSONB stores them
        return float(value)
    raise _NotReplayable(f"the stored value {value!r} is not a number")


def _text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _NotReplayable(f"the stored {key} {value!r} is not text")


def _instant(payload: Mapping[str, Any], key: str) -> datetime:
    value = payload.get(key)
    try:
        instant = datetime.fromisoformat(str(value))
    except ValueError:
        raise _NotReplayable(f"the stored {key} {value!r} is not a timestamp") from None
    if instant.tzinfo is None:
        raise _NotReplayable(f"the stored {key} {value!r} has no time zone")
    return instant.astimezone(UTC)


def _from_staged(row: _Row) -> list[Observation]:
    """The staged row the gate quarantined, with its unit looked up in the unit table as it is now."""
    p = row.payload
    if not isinstance(p, Mapping) or not isinstance(p.get("series_id"), str) or not isinstance(p.get("frequency"), str):
        raise _NotReplayable("the payload is not a staged row")
    metadata = p.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _NotReplayable("the stored metadata is not an object")
    source = _text(p, "source")
    if source is None:
        raise _NotReplayable("the staged row has no source")
    context = series_context(
        p["series_id"],
        frequency=p["frequency"],
        unit=_text(p, "unit"),
        source=source,
        dataset=_text(p, "dataset"),
        area=_text(p, "area"),
        sector=_text(p, "sector"),
        seasonal_adjustment=_text(p, "seasonal_adjustment"),
        description=_text(p, "description"),
        metadata=metadata,
    )
    problem = context.problem()
    if problem is not None:  # the normalizer would reject it: so does the replay
        raise _Rejected(f"{problem[0]}: {problem[1]}")
    raw_period = _text(p, "raw_period")
    if raw_period is None:
        raise _NotReplayable("the staged row has no raw_period")
    period = Period(_instant(p, "period"), _instant(p, "period_end"), raw_period)
    return [context.observe(period, _number(p.get("value")), _text(p, "raw_value"), _text(p, "value_flag"))]


def _catalog_entry(series_id: str) -> CatalogEntry:
    """The catalog entry that yields `series_id` (an `EIA2:` route series id), rebuilt from the id.

    The id holds the route, data column, frequency and identifying facets; the packaged catalog adds
    what the id does not (which facet is the area, the sector, the other facets kept as metadata).
    """
    parts = series_id.split(":")
    if len(parts) != 5 or parts[0] != ROUTE_ID_PREFIX:
        raise _NotReplayable(f"{series_id!r} is not a route series id")
    route, column, code = unquote(parts[1]), unquote(parts[2]), parts[3]
    frequency = BULK_FREQUENCY_CODES.get(code)
    if frequency is None:
        raise _NotReplayable(f"{series_id!r} has an unknown frequency code {code!r}")
    facets: dict[str, tuple[str, ...]] = {}
    for item in filter(None, parts[4].split(";")):
        key, sep, value = item.partition("=")
        if not sep:
            raise _NotReplayable(f"{series_id!r} has a malformed facet {item!r}")
        facets[unquote(key)] = (unquote(value),)
    known = next((e for e in _packaged_catalog() if e.route == route), None)
    return CatalogEntry(
        id="quarantine-replay",
        route=route,
        frequency=frequency,
        data=(column,),
        facets={**(dict(known.facets) if known else {}), **facets},
        series_facets=tuple(sorted(facets)),
        area_facet=known.area_facet if known else None,
        sector_facet=known.sector_facet if known else None,
    )


_catalog_cache: list[tuple[CatalogEntry, ...]] = []


def _packaged_catalog() -> tuple[CatalogEntry, ...]:
    if not _catalog_cache:
        _catalog_cache.append(load_catalog().entries)
    return _catalog_cache[0]


def _renormalized(row: _Row) -> list[Observation]:
    """A normalizer rejection through the same normalizer again."""
    if row.reason in NOT_REPLAYABLE:
        raise _NotReplayable(NOT_REPLAYABLE[row.reason])
    payload = row.payload
    if not isinstance(payload, Mapping):
        raise _NotReplayable("no stored input")
    result: NormalizeResult
    if row.source == SOURCE_API:
        if not row.series_id:
            raise _NotReplayable("the row has no series id to find its request by")
        if row.series_id.startswith(f"{ROUTE_ID_PREFIX}:"):
            entry = _catalog_entry(row.series_id)
            result = normalize_route_rows([payload], entry)
        else:
            frequency = BULK_FREQUENCY_CODES.get(row.series_id.rsplit(".", 1)[-1])
            if frequency is None or frequency not in FREQUENCIES:
                raise _NotReplayable(f"the frequency of {row.series_id!r} is not in its id")
            result = normalize_seriesid_rows(row.series_id, [payload], frequency=frequency)
        result.observations[:] = [o for o in result.observations if o.series_id == row.series_id]
    elif row.source == SOURCE_BULK:
        line = payload.get("line")
        if not isinstance(line, str) or not row.dataset:
            raise _NotReplayable("a bulk data point, stored without its series' unit and frequency")
        if len(line) >= MAX_LINE_PAYLOAD:
            raise _NotReplayable("the stored line may be cut at the payload limit")
        result = parse_bulk_line(line, row.dataset).result
    else:
        raise _NotReplayable(f"unknown source {row.source!r}")
    if result.rejections:
        first = result.rejections[0]
        raise _Rejected(f"{first.reason}: {first.detail}")
    if not result.observations:
        raise _NotReplayable("the stored input yields no observation")
    return result.observations


def _earlier_replay(observations: Sequence[Observation]) -> Mapping[str, Any] | None:
    """The provenance a row kept from an earlier replay whose gate re-filed it, if any."""
    for obs in observations:
        earlier = (obs.metadata or {}).get(METADATA_KEY)
        if isinstance(earlier, Mapping) and isinstance(earlier.get("fetched_before"), str):
            return earlier
    return None


def _rebuild(row: _Row) -> _Rebuilt:
    observations = _from_staged(row) if row.reason in GATE_REASONS else _renormalized(row)
    # A row re-filed by a blocked replay keeps the origin of its data: its first quarantine.
    earlier = _earlier_replay(observations)
    fetched = row.quarantined_at.astimezone(UTC)
    if earlier is not None:
        with contextlib.suppress(ValueError, TypeError):
            fetched = min(fetched, datetime.fromisoformat(str(earlier["fetched_before"])).astimezone(UTC))
    provenance = {
        "quarantine_id": row.id,
        "batch_id": str(earlier.get("batch_id", row.batch_id)) if earlier else row.batch_id,
        "reason": str(earlier.get("reason", row.reason)) if earlier else row.reason,
        "fetched_before": fetched.isoformat(),
    }
    for obs in observations:
        obs.metadata = {**(obs.metadata or {}), METADATA_KEY: provenance}
    return _Rebuilt(row, observations, fetched)


# --- selecting, ordering and batching -----------------------------------------------------------------


def _select(
    conn: psycopg.Connection[TupleRow], tenant_id: str, reason: str | None, series: str | None, max_rows: int
) -> tuple[list[_Row], int]:
    """The oldest matching rows, about `max_rows` of them (ending where an original batch ends), and
    how many matching rows that leaves for the next replay."""
    clauses, params = ["q.tenant_id = %(tenant)s"], {"tenant": tenant_id, "reason": reason, "series": series}
    if reason is not None:
        clauses.append("q.reason = %(reason)s")
    if series is not None:
        clauses.append("q.series_id = %(series)s")
    where = " AND ".join(clauses)
    total_row = conn.execute(f"SELECT count(*) FROM {QUARANTINE} q WHERE {where}", params).fetchone()
    total = int(total_row[0]) if total_row else 0
    selected: list[_Row] = []
    with conn.cursor(name="eia_quarantine_replay") as cur:  # server-side: payloads stream in
        cur.execute(
            f"""SELECT q.id, q.series_id, q.raw_period, q.reason, q.source, q.dataset, q.payload, q.ingest_batch_id,
                    q.quarantined_at
                FROM {QUARANTINE} q WHERE {where} ORDER BY q.quarantined_at, q.id""",
            params,
        )
        for record in cur:
            row = _Row(*record)
            if len(selected) >= max_rows and row.batch_id != selected[-1].batch_id:
                break
            selected.append(row)
    return selected, total - len(selected)


def _batches(rebuilt: Sequence[_Rebuilt], batch_rows: int) -> Iterator[list[_Rebuilt]]:
    """Oldest first, cut where a (series, period) already in the batch comes from another original
    batch (it loads in the next one, as a revision), or at the size limit; never inside an original
    batch, whose repeated periods the gate must see together."""
    batch: list[_Rebuilt] = []
    keys: dict[tuple[str, datetime], str] = {}
    for item in rebuilt:
        origin = item.row.batch_id
        clash = any(keys.get((o.series_id, o.period), origin) != origin for o in item.observations)
        boundary = bool(batch) and batch[-1].row.batch_id != item.row.batch_id
        if batch and (clash or (boundary and len(batch) >= batch_rows)):
            yield batch
            batch, keys = [], {}
        batch.append(item)
        keys.update(((o.series_id, o.period), item.row.batch_id) for o in item.observations)
    if batch:
        yield batch


def _superseded(conn: psycopg.Connection[TupleRow], tenant_id: str, items: Sequence[_Rebuilt]) -> set[int]:
    """Quarantine ids of rows whose period the table already holds from a newer fetch."""
    series, periods, fetched, ids = [], [], [], []
    for item in items:
        for o in item.observations:
            series.append(o.series_id)
            periods.append(o.period)
            fetched.append(item.fetched)
            ids.append(item.row.id)
    if not ids:
        return set()
    rows = conn.execute(
        f"""SELECT DISTINCT k.id
            FROM unnest(%(series)s::text[], %(periods)s::timestamptz[], %(fetched)s::timestamptz[], %(ids)s::bigint[])
                AS k(series_id, period, fetched, id)
            JOIN {TIMESERIES} t ON t.tenant_id = %(tenant)s AND t.series_id = k.series_id AND t.period = k.period
            WHERE coalesce((t.metadata -> %(key)s ->> 'fetched_before')::timestamptz,
                    to_timestamp(t.ingest_ts / 1000000.0)) > k.fetched""",
        {
            "series": series,
            "periods": periods,
            "fetched": fetched,
            "ids": ids,
            "tenant": tenant_id,
            "key": METADATA_KEY,
        },
    ).fetchall()
    return {int(r[0]) for r in rows}


def _remover(tenant_id: str, ids: Sequence[int]) -> Callable[[psycopg.Connection[TupleRow]], None]:
    """Deletes exactly these quarantine rows inside the load's transaction, or rolls it all back."""

    def remove(conn: psycopg.Connection[TupleRow]) -> None:
        deleted = conn.execute(
            f"DELETE FROM {QUARANTINE} WHERE tenant_id = %s AND id = ANY(%s)", (tenant_id, list(ids))
        ).rowcount
        if deleted != len(ids):
            raise ReplayConflict(
                f"{len(ids) - deleted} of the {len(ids)} quarantine rows being replayed left quarantine meanwhile; "
                "their batch was rolled back: run the replay again"
            )

    return remove


@contextlib.contextmanager
def _exclusive(dsn: str) -> Iterator[None]:
    """One replay at a time per database (a session advisory lock, released when the replay ends)."""
    with connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (_LOCK,)).fetchone()
        if not row or not row[0]:
            raise ReplayError("another quarantine replay is running; try again when it has finished")
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_LOCK,))


def _audit(dsn: str, actor: str, filters: Mapping[str, Any], result: ReplayResult, error: str | None) -> None:
    details = {"filters": dict(filters), **result.as_dict(), **({"error": error} if error else {})}
    with transaction(dsn) as conn:
        write_audit(conn, actor, AUDIT_ACTION, details)


def replay_quarantine(
    dsn: str,
    *,
    tenant_id: str,
    reason: str | None = None,
    series: str | None = None,
    targets: ReplayTargets | None = None,
    actor: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> ReplayResult:
    """Replays the tenant's quarantine rows matching `reason` and `series` (see the module docstring),
    the oldest `max_rows` of them (`ReplayResult.remaining` says how many wait for the next replay).

    With `actor`, the replay (its filters, counts and batches) is recorded in the audit log.
    """
    targets = targets or ReplayTargets()
    result = ReplayResult()
    filters = {"tenant_id": tenant_id, "reason": reason, "series": series}
    error: str | None = None
    try:
        with _exclusive(dsn):
            _replay(dsn, tenant_id, reason, series, targets, max(1, batch_rows), max(1, max_rows), result)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if actor is not None:
            with contextlib.suppress(Exception):
                _audit(dsn, actor, filters, result, error)
    return result


def _replay(
    dsn: str,
    tenant_id: str,
    reason: str | None,
    series: str | None,
    targets: ReplayTargets,
    batch_rows: int,
    max_rows: int,
    result: ReplayResult,
) -> None:
    with connect(dsn) as conn:
        rows, result.remaining = _select(conn, tenant_id, reason, series, max_rows)
    result.selected = len(rows)
    groups: dict[tuple[str, str | None], list[_Rebuilt]] = {}
    for row in rows:
        try:
            rebuilt = _rebuild(row)
        except _NotReplayable as exc:
            why = f"{row.reason}: {exc}"
            result.not_replayable[why] = result.not_replayable.get(why, 0) + 1
            continue
        except _Rejected:
            result.rejected += 1
            continue
        groups.setdefault((row.source, row.dataset), []).append(rebuilt)
    run_id = f"replay-{uuid.uuid4().hex[:12]}"
    for (source, dataset), items in groups.items():
        items.sort(key=lambda item: (item.fetched, item.row.id))
        blocked = False
        for batch in _batches(items, batch_rows):
            if blocked:
                result.held_back += len(batch)
                continue
            with connect(dsn) as conn:
                stale = _superseded(conn, tenant_id, batch)
            result.superseded += len(stale)
            batch = [item for item in batch if item.row.id not in stale]
            if not batch:
                continue
            outcome = _load(dsn, tenant_id, run_id, source, dataset, batch, targets)
            blocked = not outcome.passed
            refiled = _refiled(dsn, tenant_id, outcome.batch_id) if outcome.counts.quarantined else set()
            _count(result, batch, outcome, source, dataset, refiled)


def _load(
    dsn: str,
    tenant_id: str,
    run_id: str,
    source: str,
    dataset: str | None,
    batch: Sequence[_Rebuilt],
    targets: ReplayTargets,
) -> BatchOutcome:
    ctx = BatchContext.new(tenant_id, run_id, REPLAY_JOB)
    observations = [o for item in batch for o in item.observations]
    remove = _remover(tenant_id, [item.row.id for item in batch])
    return load_batch(
        dsn,
        ctx,
        NormalizeResult(observations, []),
        # No DLQ messages: these rows were announced on the dead-letter topic when first quarantined.
        LoadTargets(outbox_topic=targets.outbox_topics.get(source), dlq_topic=None, source=source, dataset=dataset),
        retention_years=targets.retention_years,
        before_write=remove,
    )


def _refiled(dsn: str, tenant_id: str, batch_id: str) -> set[tuple[str | None, str | None]]:
    """(series, raw period) of every row the replay batch re-filed in quarantine."""
    with connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT series_id, raw_period FROM {QUARANTINE} WHERE tenant_id = %s AND ingest_batch_id = %s",
            (tenant_id, batch_id),
        ).fetchall()
    return {(r[0], r[1]) for r in rows}


def _count(
    result: ReplayResult,
    batch: Sequence[_Rebuilt],
    outcome: BatchOutcome,
    source: str,
    dataset: str | None,
    refiled: set[tuple[str | None, str | None]],
) -> None:
    """Adds one batch to the result: a quarantine row counts as re-filed when any of its observations was."""
    c = outcome.counts
    result.replayed += len(batch)
    again = sum(1 for item in batch if any((o.series_id, o.raw_period) in refiled for o in item.observations))
    if not outcome.passed:
        again = len(batch)
    result.loaded += len(batch) - again
    result.requarantined += again
    result.inserted += c.inserted
    result.updated += c.updated
    result.unchanged += c.unchanged
    result.skipped += c.skipped
    result.batches.append(
        ReplayBatch(
            batch_id=outcome.batch_id,
            source=source,
            dataset=dataset,
            quarantine_ids=[item.row.id for item in batch],
            observations=sum(len(item.observations) for item in batch),
            passed=outcome.passed,
            failed_checks=list(outcome.failed_checks),
            inserted=c.inserted,
            updated=c.updated,
            unchanged=c.unchanged,
            quarantined=c.quarantined,
            skipped=c.skipped,
        )
    )
