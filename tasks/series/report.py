"""Run reports: the markdown and table artifacts a user sees in the Prefect UI for each run.

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
    total_disagreed: bool = False

    @property
    def failed(self) -> bool:
        """The entry did not load: an error, or a blocked batch. Quarantined rows alone are no failure."""
        return self.error is not None or self.blocked is not None

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if self.blocked:
            return "blocked"
        return f"quarantined {self.counts.quarantined}" if self.counts.quarantined else "ok"

    @property
    def detail(self) -> str:
        if self.error:
            return self.error
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


def table_rows(entries: Sequence[EntryReport]) -> list[dict[str, Any]]:
    return [
        {
            "series": e.key,
            "status": e.status,
            "pages": e.pages,
            "fetched": e.fetched,
            "loaded": e.counts.inserted,
            "updated": e.counts.updated,
            "unchanged": e.counts.unchanged,
            "quarantined": e.counts.quarantined,
            "skipped": e.counts.skipped,
            "detail": scrub(e.detail),
        }
        for e in entries
    ]


def markdown_summary(
    title: str, entries: Sequence[EntryReport], totals: Counts, *, requests: int, kafka: str, status: str
) -> str:
    lines = [
        f"# {title}",
        "",
        f"**Status:** {status}  ",
        f"**Series/requests planned:** {len(entries)}  ",
        f"**EIA requests used:** {requests}  ",
        f"**Quarantined:** {quarantine_summary(merged_reasons(entries))}  ",
        f"**Kafka:** {kafka}",
        "",
        "| fetched | loaded | updated | unchanged | quarantined | skipped |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {totals.received} | {totals.inserted} | {totals.updated} | {totals.unchanged} | {totals.quarantined} "
        f"| {totals.skipped} |",
    ]
    problems = [e for e in entries if e.failed]
    if problems:
        lines += ["", "## Problems", ""]
        lines += [f"- `{e.key}`: {e.status}: {scrub(e.detail)}" for e in problems]
    quarantined = [e for e in entries if not e.failed and e.counts.quarantined]
    if quarantined:
        lines += ["", "## Quarantined rows", ""]
        lines += [f"- `{e.key}`: {scrub(e.detail)}" for e in quarantined]
    return "\n".join(lines)
