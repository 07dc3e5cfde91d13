"""`ingest_eia_bulk`: the monthly bulk flow (runbook: 1st of the month, 03:00 UTC).

Reads like the runbook, per dataset: manifest → skip if unchanged (no download) → download →
verify the archive → stream lines in fixed-size batches through the same gate and merge as the
series flow, checkpointing each committed batch → mark the version loaded → publish. A run that
dies resumes from its last committed batch. All work happens in tasks; this module orchestrates.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from prefect import State, flow, get_run_logger
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, concurrency
from prefect.states import Failed

from blocks import API_KEY_BLOCK, DATABASE_BLOCK, ENDPOINTS_BLOCK, KAFKA_BLOCK
from flows._fanout import fan_out as fan_out_datasets
from flows._fanout import in_deployment
from flows._run import ProgressArtifact, begin_ingestion_run, end_ingestion_run, publish_report
from flows.settings import RunSettings, bulk_url, load_run_settings
from tasks.bulk import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_LINE_BYTES,
    ArchiveError,
    ArchiveLimits,
    ArchiveVersion,
    BulkError,
    BulkLoadConfig,
    DatasetReport,
    LoadProgress,
    LogProgress,
    Manifest,
    RichProgress,
    Validators,
    check_dataset_code,
    quiet_expected_tracebacks,
)
from tasks.bulk.fanout import (
    ARTIFACT_KEY,
    CHILD_DEPLOYMENT,
    DATASET_LEASE_S,
    DATASET_LIMIT,
    artifact_markdown,
    artifact_rows,
    failure_message,
)
from tasks.bulk.tasks import (
    download_bulk_archive_task,
    fetch_bulk_manifest_task,
    hash_bulk_archive_task,
    load_bulk_archive_task,
    publish_bulk_report,
    read_bulk_state_task,
    record_unchanged_version_task,
    verify_bulk_archive_task,
)
from tasks.core import install_logging_filter, scrub_text
from tasks.load import DEFAULT_MAX_QUARANTINE_SHARE, quarantine_summary
from tasks.load.tasks import publish_outbox_task
from tasks.store import Counts, connect, data_dir, finish_run

FLOW_NAME: Final = "ingest_eia_bulk"
# The runbook's datasets. EBA (hourly grid data) is the largest: about 700 MB compressed.
DEFAULT_DATASETS: Final = ("ELEC", "PET", "NG", "COAL", "TOTAL", "EBA")
DEFAULT_MAX_DOWNLOAD_BYTES: Final = 4 * 1024**3
DEFAULT_MAX_MEMBER_BYTES: Final = 32 * 1024**3
# EIA's JSON lines compress 4-10x; a zip bomb reaches hundreds or thousands.
DEFAULT_MAX_COMPRESSION_RATIO: Final = 100.0
# An archive read may stall between chunks; this is per read, not for the whole transfer.
DOWNLOAD_READ_TIMEOUT_S: Final = 120.0


@dataclass(slots=True)
class BulkRunResult:
    run_id: str
    status: str  # completed, failed
    message: str
    counts: Counts
    datasets: list[DatasetReport] = field(default_factory=list)


def bulk_run_result(state: State[Any]) -> BulkRunResult | None:
    """The run's summary from its final state (Completed or Failed), without re-raising."""
    data = state.data
    data = getattr(data, "result", data)  # a ResultRecord wraps the value
    return data if isinstance(data, BulkRunResult) else None


@dataclass(frozen=True, slots=True)
class _Options:
    work_dir: Path
    batch_size: int
    max_line_bytes: int
    max_download_bytes: int
    limits: ArchiveLimits
    allowed_hosts: tuple[str, ...]
    force: bool
    max_batches: int | None
    progress: bool
    max_quarantine_share: float


def _check_parameters(
    batch_size: int,
    max_batches: int | None,
    max_line_bytes: int,
    max_download_bytes: int,
    max_member_bytes: int,
    max_compression_ratio: float,
) -> str | None:
    """The first unusable flow parameter, named, or None."""
    positive = {
        "batch_size": batch_size,
        "max_line_bytes": max_line_bytes,
        "max_download_bytes": max_download_bytes,
        "max_member_bytes": max_member_bytes,
        "max_compression_ratio": max_compression_ratio,
    }
    if max_batches is not None:
        positive["max_batches"] = max_batches
    for name, value in positive.items():
        if value <= 0:
            return f"flow parameter {name} must be positive, got {value}"
    return None


class _WithArtifact:
    """The terminal or log progress, plus the run's progress artifact (compressed bytes read of the dataset)."""

    def __init__(self, inner: LoadProgress, artifact: ProgressArtifact) -> None:
        self._inner, self._artifact, self._total = inner, artifact, 0

    def start(self, dataset: str, *, compressed_total: int, lines_total: int | None, first_line: int) -> None:
        self._total = compressed_total
        self._artifact.description = f"{FLOW_NAME}: {dataset}, compressed bytes read"
        self._inner.start(dataset, compressed_total=compressed_total, lines_total=lines_total, first_line=first_line)
        self._artifact.update(0.0, force=True)

    def committed(self, *, rows: int, lines: int, compressed: int) -> None:
        self._inner.committed(rows=rows, lines=lines, compressed=compressed)
        self._artifact.update(100.0 * compressed / self._total if self._total else 0.0)

    def finish(self) -> None:
        self._inner.finish()
        self._artifact.done()


def _progress(enabled: bool, code: str) -> LoadProgress:
    inner: LoadProgress = RichProgress() if enabled else LogProgress(get_run_logger(), every_s=30.0)
    key = "eia-bulk-progress-" + "".join(c if c.isalnum() else "-" for c in code.lower())
    return _WithArtifact(inner, ProgressArtifact(key, f"{FLOW_NAME}: {code}"))


async def _ingest_dataset(
    code: str, manifest: Manifest, settings: RunSettings, run_id: str, options: _Options
) -> DatasetReport:
    """One dataset, start to end; expected faults become a failed report, not an exception."""
    log = get_run_logger()
    report = DatasetReport(code, "failed")
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        entry = manifest.entry(code)
        report.version = entry.last_updated
        state = await asyncio.to_thread(read_bulk_state_task, settings.dsn, settings.tenant_id, code)
        loaded, checkpoint = state.loaded, state.checkpoint
        if loaded is not None and loaded.last_updated == entry.last_updated and not options.force:
            report.status, report.detail = "unchanged", f"version {entry.last_updated} is already loaded"
            log.info("%s: %s; nothing downloaded", code, report.detail)
            return report

        dest = options.work_dir / f"{code}.zip"
        # A conditional request asks either "is my kept copy (of an unfinished load) current?" or
        # "is the archive still the one already loaded?"; a 304 means something different for each.
        validators: Validators | None = None
        kept_copy = False
        if checkpoint is not None and checkpoint.version.last_updated == entry.last_updated and dest.exists():
            validators, kept_copy = Validators(checkpoint.version.etag, checkpoint.version.last_modified), True
        elif loaded is not None and loaded.etag and not options.force:
            validators = Validators(loaded.etag, None)
        download = await asyncio.to_thread(
            download_bulk_archive_task,
            entry.access_url,
            dest,
            manifest=manifest.url,
            allowed_hosts=options.allowed_hosts,
            max_bytes=options.max_download_bytes,
            timeout_s=DOWNLOAD_READ_TIMEOUT_S,
            validators=validators,
        )
        report.downloaded, report.requests = not download.not_modified, 1
        sha256 = download.sha256
        if download.not_modified:
            if not kept_copy and loaded is not None:
                # The archive is the one already loaded, under an older manifest stamp.
                dest.unlink(missing_ok=True)
                await asyncio.to_thread(
                    record_unchanged_version_task,
                    settings.dsn,
                    settings.tenant_id,
                    code,
                    entry.last_updated,
                    loaded,
                    run_id,
                )
                report.status = "unchanged"
                report.detail = f"manifest stamp changed to {entry.last_updated}, archive unchanged (HTTP 304)"
                log.info("%s: %s", code, report.detail)
                return report
            sha256 = await asyncio.to_thread(hash_bulk_archive_task, dest)
        assert sha256 is not None
        try:
            archive = await asyncio.to_thread(verify_bulk_archive_task, dest, code, options.limits)
        except ArchiveError:
            dest.unlink(missing_ok=True)  # useless, and possibly hundreds of MB: the next run downloads afresh
            raise
        log.info(
            "%s: archive %s verified: %s, %d bytes compressed, %d uncompressed, %d lines",
            code,
            entry.last_updated,
            archive.member,
            archive.compressed_bytes,
            archive.member_bytes,
            archive.lines or 0,
        )
        version = ArchiveVersion(entry.last_updated, sha256, download.etag, download.last_modified)
        config = BulkLoadConfig(
            tenant_id=settings.tenant_id,
            run_id=run_id,
            job_id=FLOW_NAME,
            dataset=code,
            batch_size=options.batch_size,
            max_line_bytes=options.max_line_bytes,
            retention_years=settings.retention_years,
            max_batches=options.max_batches,
            max_quarantine_share=options.max_quarantine_share,
        )
        kafka = settings.kafka
        load = await asyncio.to_thread(
            load_bulk_archive_task,
            settings.dsn,
            archive,
            version,
            config,
            kafka.bulk_topic if kafka else None,
            kafka.dlq_topic if kafka else None,
            _progress(options.progress, code),
        )
        report.status, report.counts, report.batches, report.lines = load.status, load.counts, load.batches, load.lines
        report.total_counts, report.failed_checks = load.total_counts, load.failed_checks
        report.quarantined_by_reason = load.quarantined_by_reason
        if load.resumed_from is not None:
            report.resumed_from_line = load.resumed_from.line_number + 1
            log.info("%s: resumed from the checkpoint at line %d", code, report.resumed_from_line)
        if load.status == "loaded":
            report.detail = f"{load.total_batches} batches, {load.total_counts.received:,} rows in the archive"
            dest.unlink(missing_ok=True)  # the version is recorded; the next change is a new download
        elif load.status == "partial":
            report.detail = f"stopped after {load.batches} batches (max_batches); the next run resumes"
        else:
            report.detail = load.error
    except BulkError as exc:
        report.status, report.detail = "failed", scrub_text(str(exc))
        log.error("%s: %s", code, report.detail)
    finally:
        report.duration_s = loop.time() - started
    return report


@flow(name=FLOW_NAME, log_prints=False, validate_parameters=True, persist_result=False)
async def ingest_eia_bulk(
    datasets: list[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    force: bool = False,
    allowed_hosts: list[str] | None = None,
    work_dir: str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    max_compression_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO,
    progress: bool | None = None,
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE,
    endpoints_block: str = ENDPOINTS_BLOCK,
    database_block: str = DATABASE_BLOCK,
    kafka_block: str = KAFKA_BLOCK,
    fan_out: bool | None = None,
    child_deployment: str = CHILD_DEPLOYMENT,
) -> State[BulkRunResult]:
    """Load EIA bulk archives (ELEC, PET, NG, ...) whose manifest version changed since the last load.

    Args:
        datasets: bulk dataset codes; default: ELEC, PET, NG, COAL, TOTAL, EBA.
        batch_size: observations per gated, merged and checkpointed batch.
        max_batches: stop after this many batches in this run (the next run resumes).
        force: reload datasets whose manifest version is already loaded.
        allowed_hosts: hosts, besides the manifest's own, that archive URLs may point to.
        work_dir: where archives are downloaded; default: <EIA_DATA_DIR>/bulk. Needs room for the
            largest archive (EBA.zip is about 700 MB); a partly loaded archive is kept for the resume.
        max_line_bytes: longer lines are quarantined, not parsed (memory grows by about 500 bytes per point
            of the longest line: 16 MiB is about 0.6 GB at worst).
        max_download_bytes: largest archive downloaded.
        max_member_bytes: largest uncompressed member accepted.
        max_compression_ratio: largest uncompressed/compressed ratio accepted (zip bombs).
        progress: show a progress bar; default: when stderr is a terminal.
        max_quarantine_share: when more than this share of a batch fails row-level quality rules, the batch
            is blocked and the dataset stops there (a systematic break); below it, the offending rows are
            quarantined and the load goes on.
        fan_out: one child flow run per dataset on the work pool (deployment `child_deployment`), each
            loading its dataset in its own pod; default: in a deployment run with more than one dataset.
            Off: the datasets load one after another in this process (as `eia run bulk` does locally).
        child_deployment: the deployment each child runs (README, "Scale out").
    """
    params: dict[str, Any] = {
        "batch_size": batch_size,
        "max_batches": max_batches,
        "force": force,
        "allowed_hosts": allowed_hosts,
        "work_dir": work_dir,
        "max_line_bytes": max_line_bytes,
        "max_download_bytes": max_download_bytes,
        "max_member_bytes": max_member_bytes,
        "max_compression_ratio": max_compression_ratio,
        "progress": progress,
        "max_quarantine_share": max_quarantine_share,
        "endpoints_block": endpoints_block,
        "database_block": database_block,
        "kafka_block": kafka_block,
    }
    deployed = in_deployment()
    if fan_out is None:
        fan_out = deployed and len(set(datasets or DEFAULT_DATASETS)) > 1
    if fan_out:
        return await _parent(datasets, params, child_deployment)
    if not deployed:
        return await _ingest_here(datasets, **params)
    # A deployment run that loads here (a child, or fan_out off) holds one `eia_bulk_datasets` slot for
    # its whole load, run-log row included: at most that many datasets load at once, pool-wide.
    try:
        # A failed lease renewal (a Prefect API hiccup) must not kill an hours-long load: at worst one
        # more dataset than the limit starts meanwhile.
        slot = concurrency(
            DATASET_LIMIT, occupy=1, strict=True, lease_duration=DATASET_LEASE_S, raise_on_lease_renewal_failure=False
        )
        async with slot:
            return await _ingest_here(datasets, **params)
    except ConcurrencySlotAcquisitionError as exc:
        message = f"Prefect global concurrency limit {DATASET_LIMIT!r} is missing ({exc}); run `eia init` to create it"
        get_run_logger().error("%s", message)
        return Failed(message=message)


async def _parent(datasets: list[str] | None, params: dict[str, Any], child_deployment: str) -> State[BulkRunResult]:
    """Starts one child run per dataset, waits for them, reports them all; fails naming failed datasets."""
    install_logging_filter()
    quiet_expected_tracebacks()
    log = get_run_logger()
    message = _check_parameters(
        params["batch_size"],
        params["max_batches"],
        params["max_line_bytes"],
        params["max_download_bytes"],
        params["max_member_bytes"],
        params["max_compression_ratio"],
    )
    try:
        codes = list(dict.fromkeys(check_dataset_code(d.strip().upper()) for d in (datasets or DEFAULT_DATASETS)))
    except BulkError as exc:
        message, codes = message or scrub_text(str(exc)), []
    if message is not None:  # before any child starts: N children would fail the same way
        log.error("%s", message)
        return Failed(message=message)
    settings = await load_run_settings(
        api_key_block=API_KEY_BLOCK,
        endpoints_block=params["endpoints_block"],
        database_block=params["database_block"],
        kafka_block=params["kafka_block"],
        need_api_key=False,
    )
    summary = begin_ingestion_run(settings, FLOW_NAME, params["kafka_block"], log)
    try:
        outcomes = await fan_out_datasets(codes, params, child_deployment, settings.dsn, log)
    except BaseException as exc:
        with connect(settings.dsn, autocommit=True) as conn:
            finish_run(conn, summary, status="failed", message=scrub_text(f"{type(exc).__name__}: {exc}"))
        raise
    for o in outcomes:
        summary.counts.add(o.counts)
    summary.details = {
        "datasets": {o.dataset: o.status for o in outcomes},
        "children": {o.dataset: o.flow_run_id for o in outcomes},
    }
    c = summary.counts
    success = (
        ", ".join(f"{o.dataset} {o.status}" for o in outcomes)
        + f" in {len(outcomes)} child runs: {c.inserted} inserted, {c.updated} updated, {c.unchanged} unchanged, "
        f"{c.quarantined} quarantined, {c.skipped} skipped from {c.received} observations"
    )

    async def publish(status: str) -> None:
        await publish_report(
            ARTIFACT_KEY, artifact_markdown(outcomes, parent=summary.run_id), artifact_rows(outcomes), FLOW_NAME
        )

    return await end_ingestion_run(
        settings,
        summary,
        failure=failure_message(outcomes),
        success=success,
        report=publish,
        result=lambda status, text: BulkRunResult(summary.run_id, status, text, summary.counts, []),
        log=log,
        refresh=False,  # each child refreshed the aggregate after its own merge
    )


async def _ingest_here(
    datasets: list[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    force: bool = False,
    allowed_hosts: list[str] | None = None,
    work_dir: str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    max_compression_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO,
    progress: bool | None = None,
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE,
    endpoints_block: str = ENDPOINTS_BLOCK,
    database_block: str = DATABASE_BLOCK,
    kafka_block: str = KAFKA_BLOCK,
) -> State[BulkRunResult]:
    """The datasets one after another in this process (locally, or one child of a fanned-out parent)."""
    install_logging_filter()
    quiet_expected_tracebacks()
    log = get_run_logger()
    settings = await load_run_settings(
        api_key_block=API_KEY_BLOCK,
        endpoints_block=endpoints_block,
        database_block=database_block,
        kafka_block=kafka_block,
        need_api_key=False,  # the bulk site is public: the key is never sent there
    )
    summary = begin_ingestion_run(settings, FLOW_NAME, kafka_block, log)
    run_id = summary.run_id

    reports: list[DatasetReport] = []
    manifest_requests = 0
    message = _check_parameters(
        batch_size, max_batches, max_line_bytes, max_download_bytes, max_member_bytes, max_compression_ratio
    )
    if message is None and not 0 <= max_quarantine_share <= 1:
        message = f"flow parameter max_quarantine_share must be between 0 and 1, got {max_quarantine_share}"
    try:
        if message is not None:
            raise BulkError(message)
        codes = list(dict.fromkeys(check_dataset_code(d.strip().upper()) for d in (datasets or DEFAULT_DATASETS)))
        options = _Options(
            work_dir=Path(work_dir) if work_dir else data_dir() / "bulk",
            batch_size=batch_size,
            max_line_bytes=max_line_bytes,
            max_download_bytes=max_download_bytes,
            limits=ArchiveLimits(max_member_bytes, max_compression_ratio),
            allowed_hosts=tuple(allowed_hosts or ()),
            force=force,
            max_batches=max_batches,
            progress=sys.stderr.isatty() if progress is None else progress,
            max_quarantine_share=max_quarantine_share,
        )
        base = await bulk_url(endpoints_block)
        manifest_requests = 1
        manifest = await asyncio.to_thread(fetch_bulk_manifest_task, base, timeout_s=settings.client.timeout_s)
        log.info("bulk manifest %s lists %d datasets", manifest.url, len(manifest.entries))
        for code in codes:
            report = await _ingest_dataset(code, manifest, settings, run_id, options)
            reports.append(report)
            summary.counts.add(report.counts)
            if settings.kafka is not None and report.counts.received:
                drained = await asyncio.to_thread(publish_outbox_task, settings.dsn, settings.kafka)
                if drained.pending:
                    log.warning("Kafka: %d messages wait in the outbox for the next run", drained.pending)
    except BulkError as exc:
        message = scrub_text(str(exc))
    except BaseException as exc:
        # Not an expected fault (database down, a bug): record the run as failed, then let it surface.
        summary.details = {"datasets": {r.dataset: r.status for r in reports}}
        with connect(settings.dsn, autocommit=True) as conn:
            finish_run(conn, summary, status="failed", message=scrub_text(f"{type(exc).__name__}: {exc}"))
        raise

    problems = [r for r in reports if not r.ok]
    if message is None and problems:
        message = "; ".join(f"{r.dataset}: {r.detail or r.status}" for r in problems)
    c = summary.counts
    reasons: dict[str, int] = {}
    for r in reports:
        for reason, n in r.quarantined_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
    success = (
        ", ".join(f"{r.dataset} {r.status}" for r in reports)
        + f": {c.inserted} inserted, {c.updated} updated, {c.unchanged} unchanged, "
        f"{quarantine_summary(reasons)}, {c.skipped} skipped from {c.received} observations"
    )
    summary.series = sum(r.lines for r in reports)
    summary.requests = manifest_requests + sum(r.requests for r in reports)
    summary.details = {"datasets": {r.dataset: r.status for r in reports}}

    async def publish(status: str) -> None:
        await publish_bulk_report(reports, description=f"{FLOW_NAME} {run_id}")

    return await end_ingestion_run(
        settings,
        summary,
        failure=message,
        success=success,
        report=publish,
        result=lambda status, text: BulkRunResult(run_id, status, text, summary.counts, reports),
        log=log,
    )


logging.getLogger(__name__).addHandler(logging.NullHandler())
