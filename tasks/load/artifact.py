"""The per-batch quality report: the failed and warned checks of one gated batch, with example rows.

Why it exists: issue 7 asks for a Prefect table artifact per gated batch, so that whoever watches a
run in the Prefect UI sees at once which checks a batch failed or warned on, how many rows each one
found, and a few of those rows, without querying the database. This module turns a `GateResult`
(whose example rows the gate read while the batch was still staged, with each rule's own
offending-rows SQL) into the artifact's key, Markdown and table rows; `tasks.load.tasks` hands them
to Prefect. Everything shown is scrubbed of secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tasks.core.redact import scrub, scrub_text
from tasks.quality.gate import EXAMPLE_COLUMNS, GateResult
from tasks.quality.rules import rule

# Prefect artifact keys may hold lowercase letters, digits and dashes only.
_NOT_KEY: Final = re.compile(r"[^a-z0-9-]+")
# The flows whose batches get a quality artifact, by the short name their artifact key carries.
_FLOW_KINDS: Final = {
    "ingest_eia_series_timescale": "series",
    "ingest_eia_bulk": "bulk",
    "eia_quarantine_replay": "replay",
}
# Columns of the artifact's table: the batch and the check, then one example row's fields.
CHECK_COLUMNS: Final = ("batch", "check", "severity", "outcome", "offending_rows", "threshold", "example")
TABLE_COLUMNS: Final = (*CHECK_COLUMNS, *EXAMPLE_COLUMNS)


def artifact_key(flow_name: str) -> str:
    """One stable key per flow, e.g. `eia-series-batch-quality`: the UI shows one card per flow with each
    batch's report in its history (a key per batch would pile up cards); the batch is in the content."""
    kind = _FLOW_KINDS.get(flow_name) or _NOT_KEY.sub("-", flow_name.lower()).strip("-") or "flow"
    return f"eia-{kind}-batch-quality"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _flagged(result: GateResult) -> list[Any]:
    return [c for c in result.checks if c.outcome != "pass"]


def quality_artifact(
    result: GateResult, examples: Mapping[str, Sequence[Mapping[str, Any]]], *, batch_id: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Markdown and table rows listing the batch's failed, warned and erroring checks.

    One table row per example row of a check (a check without examples, such as a row-count check,
    gets one row with the example columns empty), so the table reads check by check.
    """
    verdict = "passed" if result.passed else "blocked"
    flagged = _flagged(result)
    passed = sum(c.outcome == "pass" for c in result.checks)
    lines = [
        f"## Quality gate{f' for batch `{batch_id}`' if batch_id else ''}: {verdict}",
        "",
        f"Score {result.score:.3f}: {passed} of {len(result.checks)} checks passed; "
        f"{len(result.failed)} failed, {len(result.warned)} warned.",
        "",
    ]
    rows: list[dict[str, Any]] = []
    if flagged:
        lines += ["| check | severity | outcome | offending rows | what it checks |", "|---|---|---|---|---|"]
    for check in flagged:
        description = rule(check.name).description.replace("|", "\\|")
        lines.append(
            f"| {check.name} | {check.severity} | {check.outcome} | {_number(check.measured)} | {description} |"
        )
        base = {
            "batch": batch_id,
            "check": check.name,
            "severity": check.severity,
            "outcome": check.outcome,
            "offending_rows": check.measured,
            "threshold": check.threshold,
        }
        shown = list(examples.get(check.name, ()))
        if not shown:
            rows.append({**base, "example": None, **dict.fromkeys(EXAMPLE_COLUMNS)})
        for number, example in enumerate(shown, start=1):
            rows.append({**base, "example": number, **{c: example.get(c) for c in EXAMPLE_COLUMNS}})
    if not flagged:
        lines.append("Every check passed.")
    if result.errors:
        lines += ["", "Errors:", *(f"- {e}" for e in result.errors)]
    return scrub_text("\n".join(lines) + "\n"), scrub(rows)


@dataclass(frozen=True, slots=True)
class QualityReport:
    """One batch's quality artifact, ready to publish: a table whose description is the Markdown."""

    key: str
    markdown: str
    rows: list[dict[str, Any]]


def batch_quality_report(batch_id: str, result: GateResult, flow_name: str) -> QualityReport | None:
    """The artifact of a batch where a check failed, warned or errored; None when every check passed."""
    if not (result.failed or result.warned):
        return None
    markdown, rows = quality_artifact(result, result.examples, batch_id=batch_id)
    return QualityReport(artifact_key(flow_name), markdown, rows)
