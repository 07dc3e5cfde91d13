"""`ingest_eia_series_timescale`: the daily series flow (runbook: 02:00 UTC).

Reads like the runbook: plan → fetch (paged, slot-pooled, retried, breaker-guarded) → normalize →
gate → load → publish → report. All work happens in tasks; this module only orchestrates.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.exceptions import CancelledRun
from prefect.states import Failed
from prefect.tasks import exponential_backoff

from blocks import API_KEY_BLOCK, DATABASE_BLOCK, ENDPOINTS_BLOCK, KAFKA_BLOCK
from flows._run import ProgressArtifact, begin_ingestion_run, end_ingestion_run, publish_report
from flows.settings import RunSettings, load_run_settings
from tasks.catalog import RunValidation
from tasks.catalog.tasks import validate_for_run_task
from tasks.core import EiaAuthError, EiaBreakerOpen, EiaError, QuotaExhausted, install_logging_filter, scrub_text
from tasks.core.errors import EiaRunStopped, stop_cause
from tasks.eia import EiaClient, EiaPage, FetchOutcome, LimitsMissing, fetch_all_pages
from tasks.load import DEFAULT_MAX_QUARANTINE_SHARE, check_share, quarantine_summary
from tasks.load.tasks import publish_outbox_task
from tasks.quota import LedgerUnavailable, UsageLedger, breaker_status, seconds_until_trial, shared_breaker
from tasks.series import EntryReport, FetchRequest, api_targets, markdown_summary, merged_reasons, table_rows
from tasks.series.tasks import (
    fetch_page_task,
    load_batch_task,
    normalize_fetched_task,
    plan_series_requests_task,
)
from tasks.store import BatchContext, Counts, DatabaseUnavailable, connect

FLOW_NAME = "ingest_eia_series_timescale"
# Errors after which no other request can succeed: stop the whole run at once.
FATAL = (EiaAuthError, EiaBreakerOpen, LimitsMissing, QuotaExhausted, LedgerUnavailable, DatabaseUnavailable)


@dataclass(slots=True)
class SeriesRunResult:
    run_id: str
    status: str
    message: str
    counts: Counts
    requests: int
    entries: list[EntryReport]


def run_result(state: State[Any]) -> SeriesRunResult | None:
    """The run's summary from its final state (Completed or Failed), without re-raising."""
    data = state.data
    data = getattr(data, "result", data)  # a ResultRecord wraps the value
    return data if isinstance(data, SeriesRunResult) else None


@dataclass(slots=True)
class _Stop:
    """The run's first fatal fault: it stops every request not yet sent, and fails the run."""

    error: BaseException | None = None


async def _fetch(client: EiaClient, request: FetchRequest, settings: RunSettings) -> FetchOutcome:
    fetch = fetch_page_task.with_options(
        retries=settings.retry.retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=settings.retry.base_delay_s)
        if settings.retry.base_delay_s > 0
        else 0,
        retry_jitter_factor=settings.retry.jitter_factor,
    )

    async def page(offset: int, length: int) -> EiaPage:
        fetched = await fetch(client, request, offset, length)
        if isinstance(fetched, State):  # the task ended Cancelled: the run stopped before it was sent
            raise EiaRunStopped(client.stopped or "stopped")
        return fetched

    return await fetch_all_pages(page, page_size=settings.client.page_size, label=request.key)


async def _run_entry(
    request: FetchRequest,
    client: EiaClient,
    settings: RunSettings,
    run_id: str,
    db_lock: asyncio.Lock,
    max_quarantine_share: float,
    stop: _Stop,
) -> EntryReport:
    """One planned request, start to end. Never raises an expected fault: the report says what happened.

    A fatal fault (a rejected key, an open breaker, an exhausted quota, ...) stops the client, so the
    other entries' requests not yet sent end "not run" instead of being cancelled mid-flight.
    """
    report = EntryReport(request.key)
    if client.stopped is not None:
        report.not_run = client.stopped
        return report
    try:
        outcome = await _fetch(client, request, settings)
    except (EiaRunStopped, CancelledRun):
        report.not_run = client.stopped or "stopped"
        return report
    except FATAL as exc:
        report.error = scrub_text(str(exc))
        stop.error = stop.error or exc
        client.stop(stop_cause(exc))
        return report
    except EiaError as exc:
        report.error = scrub_text(str(exc))
        return report
    report.pages, report.fetched, report.total_disagreed = outcome.pages, len(outcome.rows), outcome.total_disagrees
    result = await asyncio.to_thread(normalize_fetched_task, request, outcome)
    ctx = BatchContext.new(settings.tenant_id, run_id, FLOW_NAME)
    targets = api_targets(settings.kafka, request.entry.route if request.entry else None)
    try:
        # One batch merges at a time: merges are short, and this keeps partition creation and Soda calm.
        async with db_lock:
            batch = await asyncio.to_thread(
                load_batch_task, settings.dsn, ctx, result, targets, settings.retention_years, max_quarantine_share
            )
    except DatabaseUnavailable as exc:
        report.error = scrub_text(str(exc))
        stop.error = stop.error or exc
        client.stop(stop_cause(exc))
        return report
    report.counts, report.failed_checks = batch.counts, batch.failed_checks
    report.quarantined_by_reason, report.blocked = batch.quarantined_by_reason, batch.blocked
    return report


async def _validate_catalog(
    client: EiaClient,
    plan: list[FetchRequest],
    forced: bool,
    stop: _Stop,
    log: logging.Logger | logging.LoggerAdapter[Any],
) -> RunValidation:
    """The run's catalog check (cached per run): entries with problems are not fetched; a fatal fault
    (a rejected key, an open breaker, an exhausted quota) stops the run as a data request's would.

    Only entries the table holds nothing of yet are checked (their request starts at `initial_start`):
    an entry with data has proven its route, frequency, columns and facets, so a daily rerun spends no
    request on metadata; an edited entry whose facets match nothing loaded yet is checked again."""
    unproven = [r.entry for r in plan if r.entry is not None and (forced or r.start == r.entry.initial_start)]
    checked = await validate_for_run_task(client, unproven)
    if checked.fatal is not None:
        stop.error = stop.error or checked.fatal
        client.stop(stop_cause(checked.fatal))
    for unchecked in checked.unvalidated:
        log.warning("catalog not validated for route %s; its entries run unchecked", unchecked)
    return checked


async def _wait_for_breaker_trial(settings: RunSettings, log: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    """A run that starts while the shared breaker is open waits for its half-open trial (at most
    `breaker_reset_timeout_s`) instead of failing at once: after an outage the next scheduled run loads."""
    with connect(settings.dsn) as conn:
        status = breaker_status(conn)
        now = conn.execute("SELECT now()").fetchone()
    assert now is not None
    wait = seconds_until_trial(status, settings.breaker.reset_timeout_s, now[0])
    if wait > 0:
        log.warning(
            "the EIA circuit breaker %r is open (opened at %s after repeated EIA failures); waiting %.0fs for its "
            "half-open trial before sending requests",
            status.name,
            status.opened_at.isoformat() if status.opened_at else "?",
            wait,
        )
        await asyncio.sleep(wait)


@flow(name=FLOW_NAME, log_prints=False, validate_parameters=True, persist_result=False)
async def ingest_eia_series_timescale(
    series: list[str] | None = None,
    entries: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    catalog_path: str | None = None,
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE,
    api_key_block: str = API_KEY_BLOCK,
    endpoints_block: str = ENDPOINTS_BLOCK,
    database_block: str = DATABASE_BLOCK,
    kafka_block: str = KAFKA_BLOCK,
) -> State[SeriesRunResult]:
    """Fetch EIA API v2 series (catalog entries and v1 series ids) into the observation table.

    Args:
        series: v1 series ids to fetch via /v2/seriesid/<ID>; default: the catalog's.
        entries: catalog entry ids to fetch; default: every catalog entry.
        start: first period to fetch (overrides the incremental watermark).
        end: last period to fetch.
        catalog_path: a catalog JSON file; default: the packaged catalog.
        max_quarantine_share: when more than this share of an entry's rows fail row-level quality rules,
            the entry's batch is blocked as a whole and the entry fails (a systematic break); below it, the
            offending rows are quarantined and the rest loads.
    """
    install_logging_filter()
    log = get_run_logger()
    try:
        check_share(max_quarantine_share)
    except ValueError as exc:
        log.error("flow parameter %s", exc)
        return Failed(message=f"flow parameter {exc}")
    settings = await load_run_settings(
        api_key_block=api_key_block,
        endpoints_block=endpoints_block,
        database_block=database_block,
        kafka_block=kafka_block,
    )
    summary = begin_ingestion_run(settings, FLOW_NAME, kafka_block, log)
    run_id = summary.run_id
    if settings.kafka is not None:
        # Messages an earlier run could not deliver (broker down) go first: a later run delivers them.
        leftover = publish_outbox_task(settings.dsn, settings.kafka)
        if leftover.sent:
            log.info("Kafka: delivered %d message(s) left in the outbox by earlier runs", leftover.sent)

    plan = plan_series_requests_task(settings.dsn, settings.tenant_id, catalog_path, entries, series, start, end)
    summary.series = len(plan)
    log.info(
        "planned %d requests (%d catalog entries, %d series ids)",
        len(plan),
        sum(r.kind == "route" for r in plan),
        sum(r.kind == "seriesid" for r in plan),
    )
    stop = _Stop()
    db_lock = asyncio.Lock()
    if plan:
        await _wait_for_breaker_trial(settings, log)
    with shared_breaker(
        settings.dsn, fail_max=settings.breaker.fail_max, reset_timeout_s=settings.breaker.reset_timeout_s
    ) as breaker:
        async with (
            UsageLedger(settings.dsn, settings.tenant_id, settings.cost) as ledger,
            EiaClient(settings.client, breaker, reserve=ledger.reserve, on_request=ledger.record) as client,
        ):
            ledger.watch(client.limiter)
            # The catalog is checked against EIA's metadata (one request per route) before any data request.
            checked = await _validate_catalog(client, plan, start is not None, stop, log)
            progress = ProgressArtifact("eia-series-progress", f"{FLOW_NAME}: catalog entries and series ids done")
            done = 0

            async def entry(request: FetchRequest) -> EntryReport:
                nonlocal done
                invalid = checked.problems.get(request.key) if request.kind == "route" else None
                report = (
                    EntryReport(request.key, error=invalid)
                    if invalid
                    else await _run_entry(request, client, settings, run_id, db_lock, max_quarantine_share, stop)
                )
                done += 1
                progress.update(100.0 * done / len(plan))
                return report

            try:
                progress.update(0.0, force=True)
                # Every planned request gets its report, in plan order, whatever happens to the others.
                async with asyncio.TaskGroup() as group:
                    jobs = [group.create_task(entry(r)) for r in plan]
            finally:
                summary.requests = client.requests_sent
                progress.done()
    reports = [j.result() for j in jobs]
    fatal = stop.error

    for r in reports:
        summary.counts.add(r.counts)
    published = "off"
    if settings.kafka is not None:
        drained = publish_outbox_task(settings.dsn, settings.kafka)
        published = f"{drained.sent} sent, {drained.pending} pending"
        if drained.pending:
            log.warning("Kafka: %d messages wait in the outbox for the next run or `eia outbox flush`", drained.pending)

    problems = [r for r in reports if r.failed]
    failure: str | None = None
    if fatal is not None:
        failure = scrub_text(str(fatal))
    elif problems:
        failure = "; ".join(f"{r.key}: {r.detail}" for r in problems)
    c = summary.counts
    success = (
        f"{c.inserted} inserted, {c.updated} updated, {c.unchanged} unchanged, "
        f"{quarantine_summary(merged_reasons(reports))} from {c.received} observations "
        f"({sum(r.fetched for r in reports)} API rows)"
    )
    summary.details = {"kafka": published, "problems": [r.key for r in problems]}

    async def report(status: str) -> None:
        await publish_report(
            "eia-series-run",
            markdown_summary(
                "EIA series run",
                reports,
                summary.counts,
                requests=summary.requests,
                kafka=published,
                status=status,
                page_size=settings.client.page_size,
            ),
            table_rows(reports, settings.client.page_size),
            description=f"{FLOW_NAME} {run_id}",
        )

    return await end_ingestion_run(
        settings,
        summary,
        failure=failure,
        success=success,
        report=report,
        result=lambda status, message: SeriesRunResult(
            run_id, status, message, summary.counts, summary.requests, reports
        ),
        log=log,
    )


logging.getLogger(__name__).addHandler(logging.NullHandler())
