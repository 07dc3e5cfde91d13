"""Run reports: the markdown and table artifacts a user sees in the Prefect UI for each run.

Built from plain values (no secrets reach here; text is scrubbed once more on the way out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from tasks.ops.redact import scrub
from tasks.ops.runlog import Counts


@dataclass(slots=True)
class EntryReport:
    key: str
    pages: int = 0
    fetched: int = 0
    counts: Counts = field(default_factory=Counts)
    failed_checks: list[str] = field(default_factory=list)
    error: str | None = None
    total_disagreed: bool = False

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        return "gate failed" if self.failed_checks else "ok"


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
            "detail": scrub(e.error or ", ".join(e.failed_checks)),
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
        f"**Kafka:** {kafka}",
        "",
        "| fetched | loaded | updated | unchanged | quarantined | skipped |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {totals.received} | {totals.inserted} | {totals.updated} | {totals.unchanged} | {totals.quarantined} "
        f"| {totals.skipped} |",
    ]
    problems = [e for e in entries if e.status != "ok"]
    if problems:
        lines += ["", "## Problems", ""]
        lines += [f"- `{e.key}`: {e.status}: {scrub(e.error or ', '.join(e.failed_checks))}" for e in problems]
    return "\n".join(lines)


async def publish_report(key: str, markdown: str, rows: list[dict[str, Any]], description: str) -> None:
    await acreate_markdown_artifact(key=key, markdown=scrub(markdown), description=description)
    await acreate_table_artifact(key=f"{key}-table", table=scrub(rows), description=description)
