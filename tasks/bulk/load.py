"""Loading one verified archive: stream lines → fixed-size batches → the shared gate and merge → checkpoint.

Why it is shaped this way:
- **Same path as the API.** Every batch goes through `tasks.load.batch.load_batch` (quarantine
  rejections, COPY to staging, Soda gate, merge with revisions and outbox), so bulk rows obey
  exactly the rules API rows do. The checkpoint, series metadata and categories of the batch
  are written by its `after_merge` hook, inside the merge transaction.
- **Fixed-size batches.** A batch holds `batch_size` items (observations, and rejections, which
  are counted rows too). One series line can hold more points than a batch (hourly EBA series),
  so a batch may end inside a line; the checkpoint then says how many of that line's items are
  done. Two lines of the same series never share a batch (their periods could collide in the
  gate's uniqueness check); the second starts a new batch.
- **Overlap, bounded.** Three stages run side by side: a parser thread builds batch n+2, a stager
  thread COPYs batch n+1 into staging on its own connection, and the loader gates and merges batch
  n. Parsing and row building are Python work, the COPY and the merge PostgreSQL work, so both cores
  work at once. Memory holds two batches of observations (the one being parsed and the one being
  staged); a staged batch keeps only what its settling needs. Each batch still settles in one
  transaction, in order, so the checkpoint is exact; a batch staged ahead and not settled (the load
  stopped or was killed) is never merged, and the next run stages it again. Long series lines
  (EBA's hourly lines reach ~100,000 points) are parsed in parts, and only while no other batch is
  being staged.
- **Nothing lost.** Lines too long, not UTF-8, not JSON, without series_id, or with bad points
  become rejections (quarantined with a reason, counted as received), never crashes.
- **No Prefect here.** Each gated batch's outcome goes to the `on_batch` callback; the bulk task
  (`tasks.bulk.tasks`) passes the one that publishes the batch's quality artifact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

import psycopg
from psycopg.rows import TupleRow

from tasks.bulk.archive import ArchiveInfo
from tasks.bulk.checkpoints import (
    ArchiveVersion,
    Checkpoint,
    LoadedVersion,
    Position,
    VersionRecord,
    advance_checkpoint,
    last_loaded_version,
    mark_loaded,
    read_checkpoint,
    start_checkpoint,
    touch_checkpoint,
)
from tasks.bulk.errors import CheckpointError
from tasks.bulk.metadata import upsert_categories, upsert_series_metadata
from tasks.bulk.progress import LoadProgress, NullProgress
from tasks.bulk.reader import Line, MemberReader
from tasks.load.batch import (
    DEFAULT_MAX_QUARANTINE_SHARE,
    BatchOutcome,
    LoadTargets,
    Staged,
    check_share,
    load_batch,
    stage_batch,
)
from tasks.normalize.bulk_lines import (
    MAX_LINE_PAYLOAD,
    BulkLine,
    Category,
    SeriesMeta,
    parse_bulk_line,
    rejected_line,
)
from tasks.normalize.identity import ResultBuilder
from tasks.normalize.observation import SOURCE_BULK, NormalizeResult, Observation, Rejection
from tasks.store.database import DatabaseConfigError, connect, transaction
from tasks.store.runlog import Counts
from tasks.store.staging import BatchContext, drop_staged

DEFAULT_BATCH_SIZE: Final = 50_000
# EBA's longest lines (hourly since 2015, ~100,000 points) are about 2.7 MB. A long line's JSON is
# held whole while it is parsed in parts (~200 bytes per point), so the cap also bounds memory:
# 16 MiB ≈ 0.12 GB at worst, well inside the runbook's 2 Gi worker limit.
DEFAULT_MAX_LINE_BYTES: Final = 16 * 1024 * 1024
# A JSON escape PostgreSQL text cannot store: a line holding it is quarantined whole (see parse_line).
_NUL_ESCAPE: Final = b"\\u0000"
# Batches of observations in memory at once: the one being staged and the one being parsed (17-28 MB
# each at 50,000).
_IN_FLIGHT: Final = 2
# Series lines longer than this are parsed in parts of this many points (see _long_series_parts).
DEFAULT_LONG_LINE_BYTES: Final = 1 << 20
DEFAULT_PART_POINTS: Final = 10_000

Status = Literal["loaded", "partial", "failed"]
# Called with each gated batch's outcome, blocked or merged (the bulk task publishes its quality artifact).
OnBatch = Callable[[BatchOutcome], object]


@dataclass(frozen=True, slots=True)
class BulkLoadConfig:
    tenant_id: str
    run_id: str
    job_id: str
    dataset: str
    batch_size: int = DEFAULT_BATCH_SIZE
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    retention_years: int = 0
    max_batches: int | None = None  # stop (resumably) after this many batches in this run
    # More than this share of a batch failing row rules blocks the batch (tasks/load/batch.py).
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE
    # Series lines longer than long_line_bytes are parsed in parts of part_points points each.
    long_line_bytes: int = DEFAULT_LONG_LINE_BYTES
    part_points: int = DEFAULT_PART_POINTS

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be at least 1, got {self.max_line_bytes}")
        if self.long_line_bytes < 1:
            raise ValueError(f"long_line_bytes must be at least 1, got {self.long_line_bytes}")
        if self.part_points < 1:
            raise ValueError(f"part_points must be at least 1, got {self.part_points}")
        if self.max_batches is not None and self.max_batches < 1:
            raise ValueError(f"max_batches must be at least 1, got {self.max_batches}")
        check_share(self.max_quarantine_share)


@dataclass(slots=True)
class ArchiveLoad:
    """What loading one archive did in this run, and where the dataset stands overall."""

    dataset: str
    status: Status
    counts: Counts = field(default_factory=Counts)  # this run
    batches: int = 0  # this run
    lines: int = 0  # lines read in this run
    series_lines: int = 0
    categories: int = 0
    resumed_from: Position | None = None
    position: Position = field(default_factory=Position)
    total_counts: Counts = field(default_factory=Counts)  # the whole archive, earlier runs included
    total_batches: int = 0
    failed_checks: list[str] = field(default_factory=list)
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)  # this run
    error: str | None = None
    duration_s: float = 0.0


@dataclass(slots=True)
class Batch:
    """One batch cut from the line stream, with what its merge transaction must also write."""

    result: NormalizeResult
    metas: list[SeriesMeta]
    categories: list[Category]
    end: Position  # where the next batch starts
    lines: int  # lines finished within this batch
    series_lines: int
    compressed: int  # compressed bytes consumed when the batch was cut


def _payload_text(data: bytes) -> str:
    # The escape text itself would become a NUL again on its way into the quarantine's JSONB.
    return data[:MAX_LINE_PAYLOAD].replace(_NUL_ESCAPE, b"<U+0000>").decode("utf-8", "replace")


def _line_rejection(reason: str, detail: str, line: Line) -> BulkLine:
    return rejected_line(reason, detail, {"line_number": line.number + 1, "line": _payload_text(line.data)})


def _with_line_number(parsed: BulkLine, line: Line) -> BulkLine:
    if parsed.kind == "rejected":
        # The rejection says what is wrong; add where, so a user can find the line in the file.
        parsed.result.rejections[:] = [
            dataclasses.replace(r, payload={"line_number": line.number + 1, **(r.payload or {})})
            for r in parsed.result.rejections
        ]
    return parsed


def _long_series_parts(line: Line, dataset: str, part_points: int) -> Iterator[BulkLine] | None:
    """A long series line as parts of at most `part_points` points each, or None when it is not one.

    parse_bulk_line builds every observation of a line at once (about 700 bytes per hourly point
    while parsing); EBA's longest lines hold ~100,000 points. Parsing them in parts keeps memory
    near one part. A period repeated across parts is rejected as the normalizer rejects a repeat
    within a line: the first occurrence is kept.
    """
    try:
        obj = json.loads(line.data)
    except (ValueError, RecursionError):
        return None
    points = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(points, list) or len(points) <= part_points or not isinstance(obj.get("series_id"), str):
        return None
    head = {k: v for k, v in obj.items() if k != "data"}
    del obj

    def parts() -> Iterator[BulkLine]:
        seen: set[datetime] = set()
        first = True
        while points:
            chunk = points[:part_points]
            del points[:part_points]  # the parsed JSON shrinks as observations are built
            part = parse_bulk_line(json.dumps({**head, "data": chunk}), dataset)
            del chunk
            result = part.result
            if first or part.kind != "series":
                first = False
                seen.update(o.period for o in result.observations)
                yield part
                continue
            builder = ResultBuilder()
            kept: list[Observation] = []
            for o in result.observations:
                if o.period in seen:
                    builder.reject(
                        "duplicate_in_response",
                        f"period {o.raw_period!r} ({o.period.isoformat()}) of {o.series_id} appeared earlier; "
                        "the first occurrence is kept",
                        series_id=o.series_id,
                        raw_period=o.raw_period,
                        raw_value=o.raw_value,
                        payload={"series_id": o.series_id, "point": [o.raw_period, o.raw_value]},
                    )
                else:
                    seen.add(o.period)
                    kept.append(o)
            yield BulkLine(
                part.kind, part.meta, None, NormalizeResult(kept, result.rejections + builder.result.rejections)
            )

    return parts()


def parse_line(
    line: Line,
    dataset: str,
    max_line_bytes: int,
    *,
    long_line_bytes: int = DEFAULT_LONG_LINE_BYTES,
    part_points: int = DEFAULT_PART_POINTS,
) -> Iterator[BulkLine]:
    """One member line → its parts (one BulkLine, or several for a series line over `long_line_bytes`);
    none when blank."""
    if line.too_long:
        yield _line_rejection(
            "line_too_long",
            f"line {line.number + 1} is {line.size} bytes, more than the cap max_line_bytes={max_line_bytes}",
            line,
        )
        return
    data = line.data
    if not data.strip():
        return
    if _NUL_ESCAPE in data:
        # json.loads turns it into a NUL character, which PostgreSQL text and JSONB reject: the
        # whole COPY would fail. Quarantine the line instead of crashing the load.
        yield _line_rejection(
            "nul_character", f"line {line.number + 1} contains \\u0000, which PostgreSQL cannot store", line
        )
        return
    long_parts = _long_series_parts(line, dataset, part_points) if line.size > long_line_bytes else None
    if long_parts is not None:
        yield from long_parts
        return
    yield _with_line_number(parse_bulk_line(data, dataset), line)


class _Cutter:
    """Accumulates lines into batches of exactly `batch_size` items (the last may be smaller)."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._reset()

    def _reset(self) -> None:
        self.observations: list[Observation] = []
        self.rejections: list[Rejection] = []
        self.metas: list[SeriesMeta] = []
        self.categories: list[Category] = []
        self.series: set[str] = set()
        self.items = 0
        self.weight = 0  # metadata rows and category children: bounded like items
        self.lines = 0
        self.series_lines = 0

    @property
    def empty(self) -> bool:
        return not (self.items or self.metas or self.categories or self.lines)

    def cut(self, end: Position, compressed: int) -> Batch:
        batch = Batch(
            NormalizeResult(self.observations, self.rejections),
            self.metas,
            self.categories,
            end,
            self.lines,
            self.series_lines,
            compressed,
        )
        self._reset()
        return batch

    def take(self, observations: list[Observation], rejections: list[Rejection], start: int, stop: int) -> None:
        """Adds items [start, stop) of the line, observations first, then rejections."""
        n_obs = len(observations)
        if start < n_obs:
            self.observations.extend(observations if start == 0 and stop >= n_obs else observations[start:stop])
        if stop > n_obs:
            self.rejections.extend(rejections[max(start - n_obs, 0) : stop - n_obs])
        self.items += stop - start


def cut_batches(
    lines: Iterable[Line],
    dataset: str,
    *,
    batch_size: int,
    max_line_bytes: int,
    start: Position,
    long_line_bytes: int = DEFAULT_LONG_LINE_BYTES,
    part_points: int = DEFAULT_PART_POINTS,
    compressed: Callable[[], int] = lambda: 0,
    exclusive: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
) -> Iterator[Batch]:
    """Turns the member's lines (from `start`) into batches; each batch's `end` is the next start.

    A line's items are numbered across its parts (observations, then rejections, part by part), so
    `Position.items_done` means the same on every run. A full batch is cut when the next item
    arrives (its end is then inside a line) or when its last line ends (its end is the next line).
    A long line is read inside `exclusive()`: the loader passes a context that waits until no other
    batch is being staged, so a long line's memory never adds to a batch's observations.
    """
    cutter = _Cutter(batch_size)
    end = start
    for line in lines:
        skip = start.items_done if line.number == start.line_number else 0
        with exclusive() if line.size > long_line_bytes else contextlib.nullcontext():
            done = yield from _take_line(
                cutter,
                line,
                parse_line(line, dataset, max_line_bytes, long_line_bytes=long_line_bytes, part_points=part_points),
                skip,
                compressed,
            )
        if skip > done:
            raise CheckpointError(
                f"the checkpoint says {skip} items of line {line.number + 1} are loaded, but it has {done}; "
                "the archive is not the one the checkpoint was written for"
            )
        cutter.lines += 1
        end = Position(line.number + 1, line.end, 0)
        if cutter.items >= batch_size or cutter.weight >= batch_size:
            yield cutter.cut(end, compressed())
    if not cutter.empty:
        yield cutter.cut(end, compressed())


def _take_line(
    cutter: _Cutter, line: Line, parts: Iterator[BulkLine], skip: int, compressed: Callable[[], int]
) -> Generator[Batch, None, int]:
    """Adds one line's items to the cutter, yielding every batch that fills; returns the line's item count."""
    batch_size = cutter.batch_size
    done = 0  # items of this line handed to batches, or skipped as committed by an earlier run
    series_id: str | None = None
    for index, parsed in enumerate(parts):
        if index == 0 and parsed.kind == "series" and parsed.meta is not None:
            series_id = parsed.meta.series_id
            if series_id in cutter.series and not cutter.empty:
                # A second line of the same series: its periods may repeat the first's.
                yield cutter.cut(Position(line.number, line.offset, skip), compressed())
            cutter.series.add(series_id)
            if skip == 0:
                cutter.metas.append(parsed.meta)
                cutter.weight += 1
            cutter.series_lines += 1
        elif index == 0 and parsed.kind == "category" and parsed.category is not None:
            cutter.categories.append(parsed.category)
            cutter.weight += 1 + len(parsed.category.childseries)
        observations, rejections = parsed.result.observations, parsed.result.rejections
        total = len(observations) + len(rejections)
        local = min(max(skip - done, 0), total)  # items of this part an earlier run committed
        done += local
        while local < total:
            if cutter.items >= batch_size:
                yield cutter.cut(Position(line.number, line.offset, done), compressed())
                if series_id is not None:
                    cutter.series.add(series_id)  # the rest of this series goes in the next batch
            stop = min(total, local + batch_size - cutter.items)
            cutter.take(observations, rejections, local, stop)
            done += stop - local
            local = stop
        del parsed, observations, rejections  # let a part go before the next one is parsed
    return done


class _Stop(Exception):
    """Raised in the parser thread when the loader has stopped consuming."""


_DONE: Final = object()
_STOPPED: Final = object()


class _Handoff:
    """Batches from the parser thread to the stager, with at most `_IN_FLIGHT` batches in memory.

    The parser may build the next batch while the stager COPYs the current one, but not run further
    ahead: memory holds the batch being staged and the batch being built, never more.
    """

    def __init__(self, stop: threading.Event) -> None:
        self._items: queue.Queue[object] = queue.Queue()
        self._room = threading.Semaphore(_IN_FLIGHT)
        self._stop = stop

    def _wait_for_room(self) -> None:
        while not self._room.acquire(timeout=0.2):
            if self._stop.is_set():
                raise _Stop

    def produce(self, batches: Iterator[Batch]) -> None:
        """Parser thread: hands over batches, then _DONE, or the exception that ended it."""
        try:
            while True:
                self._wait_for_room()  # before building: the next batch is the one that takes room
                batch = next(batches, None)
                if batch is None:
                    break
                self._items.put(batch)
                del batch
            self._items.put(_DONE)
        except _Stop:
            return
        except BaseException as exc:  # the loader re-raises it
            self._items.put(exc)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Parser thread: holds the other unit of room, so no other batch is being staged meanwhile."""
        self._wait_for_room()
        try:
            yield
        finally:
            self._room.release()

    def take(self) -> object:
        """Stager: the next batch, _DONE, the parser's exception, or _STOPPED once the loader stopped."""
        while True:
            try:
                return self._items.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return _STOPPED

    def done_with_one(self) -> None:
        """Stager: a batch is staged and its observations no longer referenced."""
        self._room.release()


def _targets(dataset: str, outbox_topic: str | None, dlq_topic: str | None) -> LoadTargets:
    return LoadTargets(outbox_topic=outbox_topic, dlq_topic=dlq_topic, source=SOURCE_BULK, dataset=dataset)


@dataclass(frozen=True, slots=True)
class DatasetState:
    """What the database knows about a dataset before this run touches it."""

    loaded: LoadedVersion | None
    checkpoint: Checkpoint | None


def read_dataset_state(dsn: str, tenant_id: str, dataset: str) -> DatasetState:
    with connect(dsn) as conn:
        return DatasetState(last_loaded_version(conn, tenant_id, dataset), read_checkpoint(conn, tenant_id, dataset))


def record_unchanged_version(
    dsn: str, tenant_id: str, dataset: str, last_updated: str, previous: LoadedVersion, run_id: str
) -> None:
    """A new manifest stamp for the very archive already loaded (HTTP 304): recorded, nothing loaded."""
    with transaction(dsn) as conn:
        mark_loaded(
            conn,
            tenant_id,
            VersionRecord(
                dataset=dataset,
                version=ArchiveVersion(
                    last_updated, previous.archive_sha256 or "", previous.etag, previous.last_modified
                ),
                archive_bytes=None,
                member_bytes=None,
                lines=0,
                batches=0,
                counts=Counts(),
                run_id=run_id,
                started_at=None,
            ),
        )


def prepare_checkpoint(dsn: str, config: BulkLoadConfig, version: ArchiveVersion) -> tuple[Checkpoint, bool]:
    """The checkpoint to load from: the recorded one when it is for this very archive (resume), else a
    fresh one at the start. Returns (checkpoint, resumed)."""
    with transaction(dsn) as conn:
        current = read_checkpoint(conn, config.tenant_id, config.dataset)
        resumed = (
            current is not None
            and current.version.last_updated == version.last_updated
            and current.version.sha256 == version.sha256
        )
        if resumed:
            touch_checkpoint(conn, config.tenant_id, config.dataset, version, config.run_id)
        else:
            start_checkpoint(conn, config.tenant_id, config.dataset, version, config.run_id)
        checkpoint = read_checkpoint(conn, config.tenant_id, config.dataset)
    assert checkpoint is not None
    return checkpoint, resumed


def load_archive(
    dsn: str,
    archive: ArchiveInfo,
    version: ArchiveVersion,
    config: BulkLoadConfig,
    *,
    outbox_topic: str | None = None,
    dlq_topic: str | None = None,
    progress: LoadProgress | None = None,
    on_batch: OnBatch | None = None,
) -> ArchiveLoad:
    """Loads a verified archive from its checkpoint to the end (or `max_batches`); records the version
    as loaded when the end is reached. A batch blocked by the gate stops the load with status
    "failed"; the checkpoint stays before that batch, so a rerun retries it. `on_batch` is called
    with every gated batch's outcome, in the loader's thread."""
    started = time.monotonic()
    progress = progress or NullProgress()
    checkpoint, resumed = prepare_checkpoint(dsn, config, version)
    start = checkpoint.position
    outcome = ArchiveLoad(config.dataset, "partial", resumed_from=start if resumed else None, position=start)
    targets = _targets(config.dataset, outbox_topic, dlq_topic)
    stop = threading.Event()
    handoff = _Handoff(stop)

    with MemberReader(
        archive, max_line_bytes=config.max_line_bytes, start_line=start.line_number, start_offset=start.byte_offset
    ) as reader:
        progress.start(
            config.dataset,
            compressed_total=archive.compressed_bytes,
            lines_total=archive.lines,
            first_line=start.line_number,
        )

        cut = cut_batches(
            reader,
            config.dataset,
            batch_size=config.batch_size,
            max_line_bytes=config.max_line_bytes,
            start=start,
            long_line_bytes=config.long_line_bytes,
            part_points=config.part_points,
            compressed=lambda: reader.compressed_read,
            exclusive=handoff.exclusive,
        )
        parser = threading.Thread(target=handoff.produce, args=(cut,), name=f"bulk-parse-{config.dataset}")
        parser.start()
        finished = False
        pool = ThreadPoolExecutor(1, thread_name_prefix=f"bulk-stage-{config.dataset}")
        # Batch n+1 is staged (COPY, on its own connection) while batch n is gated and merged: the
        # COPY's Python and PostgreSQL work then overlaps the merge's instead of waiting for it.
        ahead: Future[object] | None = pool.submit(_stage_next, dsn, handoff, config)
        try:
            while ahead is not None:
                item = ahead.result()
                ahead = None
                if item is _DONE:
                    finished = True
                    break
                if item is _STOPPED:
                    break
                assert isinstance(item, _Staged)
                # Stage the next batch meanwhile, unless this one is the last this run may load.
                if config.max_batches is None or outcome.batches + 1 < config.max_batches:
                    ahead = pool.submit(_stage_next, dsn, handoff, config)
                loaded = _settle_one(dsn, item, config, targets, outcome, on_batch)
                if not loaded:
                    break
                progress.committed(
                    rows=outcome.counts.received, lines=outcome.position.line_number, compressed=item.compressed
                )
                if config.max_batches is not None and outcome.batches >= config.max_batches:
                    break
        finally:
            stop.set()
            if ahead is not None:
                _discard(dsn, ahead)
            pool.shutdown(wait=True)
            parser.join()
            progress.finish()

    if finished:
        outcome.total_counts, outcome.total_batches = _mark_loaded(dsn, config, archive, version)
        outcome.status = "loaded"
    else:
        with connect(dsn) as conn:
            now = read_checkpoint(conn, config.tenant_id, config.dataset)
        if now is not None:
            outcome.total_counts, outcome.total_batches = now.counts, now.batches
    outcome.duration_s = time.monotonic() - started
    return outcome


@dataclass(slots=True)
class _Staged:
    """A batch whose observations are staged (committed): what its settling still needs. The
    observations themselves are gone from memory by then."""

    ctx: BatchContext
    staged: Staged
    rejections: list[Rejection]
    metas: list[SeriesMeta]
    categories: list[Category]
    end: Position
    lines: int
    series_lines: int
    compressed: int


def _stage_next(dsn: str, handoff: _Handoff, config: BulkLoadConfig) -> object:
    """Stager thread: the parser's next batch, staged (a _Staged), or _DONE, or _STOPPED; re-raises
    the parser's exception."""
    item = handoff.take()
    if not isinstance(item, Batch):
        if isinstance(item, BaseException):
            raise item
        return item
    try:
        ctx = BatchContext.new(config.tenant_id, config.run_id, config.job_id)
        staged = stage_batch(dsn, ctx, item.result, retention_years=config.retention_years)
        return _Staged(
            ctx,
            staged,
            item.result.rejections,
            item.metas,
            item.categories,
            item.end,
            item.lines,
            item.series_lines,
            item.compressed,
        )
    finally:
        del item  # before making room: the parser may now build the next batch
        handoff.done_with_one()


def _discard(dsn: str, ahead: Future[object]) -> None:
    """A batch staged ahead that will not be settled in this run: its staged rows go (the next run
    stages it again from the checkpoint)."""
    try:
        item = ahead.result()
    except BaseException:  # the load has already stopped for its own reason, which is what surfaces
        return
    if isinstance(item, _Staged):
        # Best effort, never masking why the load stopped: left behind, the rows are removed with
        # the other leftovers of killed runs (staging.drop_abandoned_staging) and never merged.
        with contextlib.suppress(psycopg.Error, DatabaseConfigError), connect(dsn, autocommit=True) as conn:
            drop_staged(conn, item.ctx.batch_id)


def _settle_one(
    dsn: str,
    batch: _Staged,
    config: BulkLoadConfig,
    targets: LoadTargets,
    outcome: ArchiveLoad,
    on_batch: OnBatch | None,
) -> bool:
    """Gates and merges one staged batch through the shared path; False when the gate blocked it
    (outcome says why)."""
    ctx = batch.ctx

    def after_merge(conn: psycopg.Connection[TupleRow]) -> None:
        upsert_series_metadata(conn, config.tenant_id, batch.metas)
        upsert_categories(conn, config.tenant_id, config.dataset, batch.categories)
        advance_checkpoint(conn, config.tenant_id, config.dataset, ctx.batch_id, batch.end)

    try:
        result = load_batch(
            dsn,
            ctx,
            NormalizeResult([], batch.rejections),
            targets,
            retention_years=config.retention_years,
            max_quarantine_share=config.max_quarantine_share,
            after_merge=after_merge,
            staged=batch.staged,
        )
    except BaseException:
        # load_batch removes what it staged when it fails; this batch was staged before it ran.
        with contextlib.suppress(psycopg.Error, DatabaseConfigError), connect(dsn, autocommit=True) as conn:
            drop_staged(conn, ctx.batch_id)
        raise
    outcome.counts.add(result.counts)
    for reason, n in result.quarantined_by_reason.items():
        outcome.quarantined_by_reason[reason] = outcome.quarantined_by_reason.get(reason, 0) + n
    if on_batch is not None:
        on_batch(result)
    if result.blocked is not None:
        outcome.status = "failed"
        outcome.failed_checks = list(result.failed_checks)
        outcome.error = (
            f"the quality gate blocked a batch of {result.counts.received} rows from line "
            f"{outcome.position.line_number + 1}: {result.blocked}; its rows are quarantined and the checkpoint "
            "stays before it, so a rerun retries it"
        )
        return False
    outcome.batches += 1
    outcome.lines += batch.lines
    outcome.series_lines += batch.series_lines
    outcome.categories += len(batch.categories)
    outcome.position = batch.end
    return True


def _mark_loaded(dsn: str, config: BulkLoadConfig, archive: ArchiveInfo, version: ArchiveVersion) -> tuple[Counts, int]:
    """Records the version as loaded (and drops the checkpoint); returns the archive's total counts and batches."""
    with transaction(dsn) as conn:
        checkpoint = read_checkpoint(conn, config.tenant_id, config.dataset)
        assert checkpoint is not None
        mark_loaded(
            conn,
            config.tenant_id,
            VersionRecord(
                dataset=config.dataset,
                version=version,
                archive_bytes=archive.archive_bytes,
                member_bytes=archive.member_bytes,
                lines=checkpoint.position.line_number,
                batches=checkpoint.batches,
                counts=checkpoint.counts,
                run_id=config.run_id,
                started_at=checkpoint.started_at,
            ),
        )
    return checkpoint.counts, checkpoint.batches
