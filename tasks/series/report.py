"""Run reports: the markdown and table artifacts a user sees in the Prefect UI for each run.

One vocabulary: **API rows** are what EIA sent (rows of a response); **observations** are what the
table holds (one per API row and data column, so an API row with two data columns gives two). The
summary's totals are the sums of its table's columns.

Built from plain values (no secrets reach here; text is scrubbed once more on the way out, by
`flows._run.publish_report`, which hands them to Prefect).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tasks.core.redact import scrub
from tasks.load.batch import quarantine_summary
from tasks.store.runlog import Counts


@dataclass(slots=True)
class EntryReport:
    key: str
    pages: int = 0
    fetched: int = 0
    counts: Counts = field(default_factory=Counts)
    failed_checks: list[str] = field(default_factory=list)
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    blocked: str | None = None  # the gate blocked the entry's batch as a whole
    error: str | None = None
    not_run: str | None = None  # why the entry was never sent: another request's fatal fault stopped the run
    total_disagreed: bool = False

    @property
    def failed(self) -> bool:
        """The entry did not load: an error, a blocked batch, or not run. Quarantined rows alone are no failure."""
        return self.error is not None or self.blocked is not None or self.not_run is not None

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if self.not_run:
            return f"not run: {self.not_run}"
        if self.blocked:
            return "blocked"
        return f"quarantined {self.counts.quarantined}" if self.counts.quarantined else "ok"

    @property
    def detail(self) -> str:
        if self.error:
            return self.error
        if self.not_run:
            return "another request's fatal fault stopped the run before this one was sent"
        if self.blocked:
            return f"the quality gate blocked the batch: {self.blocked}"
        return quarantine_summary(self.quarantined_by_reason) if self.counts.quarantined else ""


def merged_reasons(entries: Sequence[EntryReport]) -> dict[str, int]:
    """Quarantined rows per reason over all entries."""
    total: dict[str, int] = {}
    for e in entries:
        for reason, n in e.quarantined_by_reason.items():
            total[reason] = total.get(reason, 0) + n
    return total


def table_rows(entries: Sequence[EntryReport], page_size: int = 5000) -> list[dict[str, Any]]:
    """One row per planned entry, in plan order, whatever happened to it."""
    return [
        {
            "entry": e.key,
            "status": e.status,
            "pages": e.pages,
            "least_pages": least_pages(e.fetched, page_size) if e.pages else 0,
            "api_rows": e.fetched,
            "observations": e.counts.received,
            "inserted": e.counts.inserted,
            "updated": e.counts.updated,
            "unchanged": e.counts.unchanged,
            "quarantined": e.counts.quarantined,
            "skipped": e.counts.skipped,
            "detail": scrub(e.detail),
        }
        for e in entries
    ]


def least_pages(api_rows: int, page_size: int) -> int:
    """The fewest data requests that can deliver `api_rows`: full pages, and one request even for none."""
    return max(1, -(-api_rows // page_size))


def request_economy(entries: Sequence[EntryReport], page_size: int) -> str:
    """Data requests sent against the least possible for the API rows received, over the entries that ran.

    A daily rerun with no new data should cost one request per entry; a first run at most
    1.05 x ceil(API rows / page size) per entry (`eia catalog plan` shows the same two numbers ahead)."""
    ran = [e for e in entries if not e.not_run and e.pages]
    pages = sum(e.pages for e in ran)
    least = sum(least_pages(e.fetched, page_size) for e in ran)
    ratio = f"{pages / least:.2f}" if least else "-"
    return f"{pages} data requests for {len(ran)} entries; the least for their API rows is {least} (ratio {ratio})"


def markdown_summary(
    title: str,
    entries: Sequence[EntryReport],
    totals: Counts,
    *,
    requests: int,
    kafka: str,
    status: str,
    page_size: int = 5000,
) -> str:
    api_rows = sum(e.fetched for e in entries)
    not_run = [e for e in entries if e.not_run]
    lines = [
        f"# {title}",
        "",
        f"**Status:** {status}  ",
        f"**Entries planned:** {len(entries)} ({len(entries) - len(not_run)} run, {len(not_run)} not run)  ",
        f"**EIA requests used:** {requests}  ",
        f"**Request economy:** {request_economy(entries, page_size)}  ",
        f"**Quarantined:** {quarantine_summary(merged_reasons(entries))}  ",
        f"**Kafka:** {kafka}",
        "",
        "| API rows | observations | inserted | updated | unchanged | quarantined | skipped |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {api_rows} | {totals.received} | {totals.inserted} | {totals.updated} | {totals.unchanged} "
        f"| {totals.quarantined} | {totals.skipped} |",
    ]
    problems = [e for e in entries if e.failed]
    if problems:
        lines += ["", "## Problems", ""]
        lines += [f"- `{e.key}`: {e.status}: {scrub(e.detail)}" for e in problems]
    quarantined = [e for e in entries if not e.failed and e.counts.quarantined]
    if quarantined:
        lines += ["", "## Quarantined observations", ""]
        lines += [f"- `{e.key}`: {scrub(e.detail)}" for e in quarantined]
    return "\n".join(lines)
