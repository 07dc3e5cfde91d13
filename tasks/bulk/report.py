"""What a user sees of a bulk run in the Prefect UI: a markdown artifact per dataset, a table per run.

Each dataset's markdown artifact has its own key (`eia-bulk-<dataset>`), so the UI keeps one
history per dataset: month after month, which version was loaded and what it changed. This module
builds the markdown and the table from plain values; `tasks.bulk.tasks` hands them to Prefect.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from tasks.core.redact import scrub
from tasks.load.batch import quarantine_summary
from tasks.store.runlog import Counts

# The run's table artifact; each dataset's markdown has its own key (`artifact_key`).
RUN_TABLE_KEY: Final = "eia-bulk-run"


@dataclass(slots=True)
class DatasetReport:
    """One dataset's outcome in one run."""

    dataset: str
    status: str  # loaded, unchanged, partial, failed
    version: str | None = None  # the manifest's last_updated
    counts: Counts = field(default_factory=Counts)  # this run
    total_counts: Counts | None = None  # the whole archive, when it spans runs
    batches: int = 0
    lines: int = 0
    downloaded: bool = False  # a new archive was transferred (not a 304)
    requests: int = 0  # HTTP requests for the archive (a 304 counts)
    resumed_from_line: int | None = None  # 1-based
    duration_s: float = 0.0
    failed_checks: list[str] = field(default_factory=list)
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)  # this run
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("loaded", "unchanged", "partial")


def artifact_key(dataset: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    return "eia-bulk-" + re.sub(r"[^a-z0-9-]+", "-", dataset.lower())


def table_rows(reports: Sequence[DatasetReport]) -> list[dict[str, Any]]:
    return [
        {
            "dataset": r.dataset,
            "status": r.status,
            "version": r.version or "-",
            "received": r.counts.received,
            "loaded": r.counts.inserted,
            "updated": r.counts.updated,
            "unchanged": r.counts.unchanged,
            "quarantined": r.counts.quarantined,
            "skipped": r.counts.skipped,
            "batches": r.batches,
            "duration_s": round(r.duration_s, 1),
            "detail": scrub(r.detail or ""),
        }
        for r in reports
    ]


def dataset_markdown(report: DatasetReport) -> str:
    c = report.counts
    lines = [
        f"# EIA bulk {report.dataset}: {report.status}",
        "",
        f"**Version (manifest last_updated):** {report.version or '-'}  ",
        f"**Downloaded:** {'yes' if report.downloaded else 'no'}  ",
        f"**Duration:** {report.duration_s:,.1f} s  ",
        f"**Batches committed:** {report.batches}  ",
        f"**Lines read:** {report.lines:,}",
    ]
    if report.resumed_from_line is not None:
        lines.append(f"  \n**Resumed from line:** {report.resumed_from_line:,}")
    lines += [
        "",
        "| received | loaded | updated | unchanged | quarantined | skipped (retention) |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {c.received:,} | {c.inserted:,} | {c.updated:,} | {c.unchanged:,} | {c.quarantined:,} | {c.skipped:,} |",
    ]
    t = report.total_counts
    if t is not None and t != c:
        lines += [
            "",
            "Whole archive, including batches committed by earlier runs:",
            "",
            "| received | loaded | updated | unchanged | quarantined | skipped |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {t.received:,} | {t.inserted:,} | {t.updated:,} | {t.unchanged:,} | {t.quarantined:,} "
            f"| {t.skipped:,} |",
        ]
    if c.quarantined:
        lines += ["", f"**Quarantined:** {quarantine_summary(report.quarantined_by_reason)}"]
    if report.detail:
        lines += ["", f"**Detail:** {report.detail}"]
    return "\n".join(lines)
