"""The quality gate: run the generated Soda contract on a staged batch and act on the outcome.

Why it exists: between staging and merge, a batch must pass every fail-level rule of the registry
(`rules.py`). This module runs the contract generated from the registry (`contract.py`) with Soda
Core 4, maps each Soda check back to its rule, records every outcome in `eia_quality_results`, and
for a blocked batch moves the offending rows to quarantine under the rule's name (found with the
rule's own predicate) and the rest of the batch under `batch_blocked`.

Gate semantics: a fail-level check that fails blocks the batch; a warn-level check that fails lets
it through but is recorded; a check that could not be evaluated (SQL error, Soda error) counts as
failed whatever its severity, so a broken rule never passes silently. The score is passed checks
divided by evaluated checks, where every rule is evaluated once per batch (an erroring check is
evaluated and not passed).
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import psycopg
from psycopg.rows import TupleRow

from tasks.quality.contract import (
    BATCH_VAR,
    DEFAULT_MAX_ROWS,
    DEFAULT_MIN_ROWS,
    contract_yaml,
    data_source_yaml,
    database_name,
)
from tasks.quality.rules import MAX_ROWS_VAR, MIN_ROWS_VAR, RULES, Severity, rule
from tasks.store.quarantine import quarantine_staged
from tasks.store.staging import BatchContext
from tasks.store.tables import QUALITY_RESULTS

# Soda reads this when its modules are imported; telemetry offline costs ~7 s per run.
os.environ["SODA_CORE_TELEMETRY_ENABLED"] = "false"

Outcome = Literal["pass", "fail", "warn", "error"]
BATCH_BLOCKED: Final = "batch_blocked"
# Batch ids are inlined into SQL by Soda's variable substitution: allow only safe characters.
_SAFE_BATCH_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_SODA_OUTCOMES: Final[Mapping[str, Outcome]] = {"PASSED": "pass", "FAILED": "fail", "WARN": "warn"}


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One rule's result on one batch."""

    name: str
    severity: Severity
    outcome: Outcome
    measured: float | None  # offending rows, schema differences or row count (see Rule.measure)
    threshold: float | None  # the rule's threshold; None for the expected-row-count range


@dataclass(frozen=True, slots=True)
class GateResult:
    """The gate's verdict on a batch."""

    passed: bool
    failed: list[str]  # rules that block the batch: failed fail-level checks and erroring checks
    warned: list[str]  # warn-level checks that failed (the batch goes through)
    checks: list[CheckOutcome]
    score: float  # passed checks / evaluated checks
    errors: list[str] = field(default_factory=list)  # why checks could not be evaluated
    duration_s: float = 0.0

    def check(self, name: str) -> CheckOutcome:
        for outcome in self.checks:
            if outcome.name == name:
                return outcome
        raise KeyError(f"no check named {name!r} in this gate result")


class GateConfigError(ValueError):
    """The gate was called with an unusable argument; the message names it."""


@functools.lru_cache(maxsize=8)
def _contract(database: str) -> str:
    return contract_yaml(database=database)


def _variables(ctx: BatchContext, expected_rows: tuple[int, int] | None) -> dict[str, Any]:
    if not _SAFE_BATCH_ID.fullmatch(ctx.batch_id):
        raise GateConfigError(f"batch id {ctx.batch_id!r} has characters the gate does not accept")
    low, high = expected_rows if expected_rows is not None else (DEFAULT_MIN_ROWS, DEFAULT_MAX_ROWS)
    if low < 0 or high < low:
        raise GateConfigError(f"expected_rows {expected_rows!r} must be (min, max) with 0 <= min <= max")
    # Numbers stay numbers: Soda substitutes a whole-scalar variable with its value as given.
    return {BATCH_VAR: ctx.batch_id, MIN_ROWS_VAR: int(low), MAX_ROWS_VAR: int(high)}


def _verify(contract: str, data_source: str, variables: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """Runs the contract with in-memory YAML; returns Soda's check results and error messages."""
    from soda_core.common.yaml import ContractYamlSource, DataSourceYamlSource
    from soda_core.contracts.contract_verification import ContractVerificationSession

    # verify_contract_locally() only takes file paths; it delegates to this same session call,
    # which also accepts in-memory sources, so the password never touches the disk.
    session = ContractVerificationSession.execute(
        contract_yaml_sources=[ContractYamlSource.from_str(contract)],
        data_source_yaml_sources=[DataSourceYamlSource.from_str(data_source)],
        variables=variables,
    )
    results = session.contract_verification_results
    if not results:
        return [], ["Soda returned no contract result"]
    result = results[0]
    errors = [line for line in str(result.get_errors_str() or "").splitlines() if line.strip()]
    return list(result.check_results or []), errors


def _measured(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def run_gate(dsn: str, ctx: BatchContext, *, expected_rows: tuple[int, int] | None = None) -> GateResult:
    """Runs every rule on the staged batch `ctx.batch_id`; `expected_rows` = (min, max) for the request."""
    started = time.perf_counter()
    variables = _variables(ctx, expected_rows)
    try:
        soda_results, errors = _verify(_contract(database_name(dsn)), data_source_yaml(dsn), variables)
    except Exception as exc:  # Soda raises for unusable YAML or connections: every check is unknown
        soda_results, errors = [], [f"Soda could not run the contract: {type(exc).__name__}: {exc}"]

    by_rule: dict[str, Any] = {}
    for soda_result in soda_results:
        qualifier = getattr(soda_result.check, "qualifier", None)
        if qualifier is not None:
            by_rule[str(qualifier)] = soda_result

    checks: list[CheckOutcome] = []
    for r in RULES:
        threshold = None if r.measure == "row_count_expected" else float(r.threshold)
        soda_result = by_rule.get(r.name)
        if soda_result is None:
            checks.append(CheckOutcome(r.name, r.severity, "error", None, threshold))
            errors.append(f"check {r.name!r}: Soda returned no result")
            continue
        outcome = _SODA_OUTCOMES.get(getattr(soda_result.outcome, "name", ""), "error")
        measured = _measured(soda_result.threshold_value)
        if outcome == "error":
            errors.append(f"check {r.name!r} was not evaluated ({soda_result.outcome})")
        checks.append(CheckOutcome(r.name, r.severity, outcome, measured, threshold))

    failed = [c.name for c in checks if c.outcome in ("fail", "error")]
    warned = [c.name for c in checks if c.outcome == "warn"]
    passed_count = sum(1 for c in checks if c.outcome == "pass")
    return GateResult(
        passed=not failed,
        failed=failed,
        warned=warned,
        checks=checks,
        score=passed_count / len(checks) if checks else 0.0,
        errors=errors,
        duration_s=time.perf_counter() - started,
    )


def record_results(conn: psycopg.Connection[TupleRow], ctx: BatchContext, result: GateResult) -> int:
    """Writes every check outcome of the batch to eia_quality_results; returns the number of rows."""
    with conn.cursor() as cur:
        cur.executemany(
            f"""INSERT INTO {QUALITY_RESULTS} (batch_id, run_id, tenant_id, check_name, severity, outcome,
                    measured_value, threshold)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                (
                    ctx.batch_id,
                    ctx.run_id,
                    ctx.tenant_id,
                    c.name,
                    c.severity,
                    c.outcome,
                    c.measured,
                    c.threshold,
                )
                for c in result.checks
            ],
        )
    return len(result.checks)


def quarantine_failures(
    conn: psycopg.Connection[TupleRow], ctx: BatchContext, result: GateResult, dlq_topic: str | None
) -> dict[str, int]:
    """Moves a blocked batch to quarantine; returns rows moved per reason (nothing for a passed batch).

    Each failed fail-level rule with a row predicate takes its offending rows first, with the rule
    name as the reason (in registry order, so a row offending twice goes under the first rule); the
    rest of the batch follows with reason `batch_blocked`, naming the failed checks.
    """
    if result.passed:
        return {}
    moved: dict[str, int] = {}
    for check in result.checks:
        if check.outcome != "fail" or check.severity != "fail":
            continue
        r = rule(check.name)
        if r.predicate is None:
            continue
        moved[r.name] = quarantine_staged(
            conn,
            ctx,
            reason=r.name,
            detail=f"failed quality check {r.name}: {r.description}",
            where_sql=r.predicate,
            dlq_topic=dlq_topic,
        )
    moved[BATCH_BLOCKED] = quarantine_staged(
        conn,
        ctx,
        reason=BATCH_BLOCKED,
        detail=f"batch blocked by failed quality checks: {', '.join(result.failed)}",
        dlq_topic=dlq_topic,
    )
    return moved


def gate_summary_markdown(result: GateResult) -> str:
    """A Markdown summary for a Prefect artifact: verdict, score, failed and warned checks."""
    verdict = "passed" if result.passed else "**blocked**"
    lines = [
        f"## Quality gate: {verdict}",
        "",
        f"Score: {result.score:.3f} ({sum(c.outcome == 'pass' for c in result.checks)} of "
        f"{len(result.checks)} checks passed)",
        "",
    ]
    flagged = [c for c in result.checks if c.outcome != "pass"]
    if flagged:
        lines += ["| check | severity | outcome | measured | threshold |", "|---|---|---|---|---|"]
        for c in flagged:
            measured = "-" if c.measured is None else f"{c.measured:g}"
            threshold = "-" if c.threshold is None else f"{c.threshold:g}"
            lines.append(f"| {c.name} | {c.severity} | {c.outcome} | {measured} | {threshold} |")
    else:
        lines.append("Every check passed.")
    if result.errors:
        lines += ["", "Errors:", *(f"- {e}" for e in result.errors)]
    return "\n".join(lines) + "\n"
