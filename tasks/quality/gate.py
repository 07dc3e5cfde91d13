"""The quality gate: run the generated Soda contract on a staged batch and return its verdict.

Why it exists: between staging and merge, a batch must pass every fail-level rule of the registry
(`rules.py`). This module runs the contract generated from the registry (`contract.py`) with Soda
Core 4 and maps each Soda check back to its rule. It judges; it moves no row. What happens to the
rows (set aside, quarantined, merged) is the load's business (`tasks/load/batch.py`); the results it
writes to `eia_quality_results` come from `record_results`.

Verdict: a check that could not be evaluated (SQL error, Soda error) counts as failed whatever its
severity, so a broken rule never passes silently, and it blocks the batch (`batch_failures`), as does
a failed fail-level batch rule. A failed fail-level row rule (`row_failures`) names its offending rows:
the load sets those aside and asks the gate again about what remains. A warn-level check that fails
is recorded and holds nothing back. The score is passed checks divided by evaluated checks, where
every rule is evaluated once per batch (an erroring check is evaluated and not passed).

Cost (issue 7 allows the gate 10% of a batch's load time): per process, the contract is generated
and parsed once, and Soda's data source keeps one open connection (its session options set once at
connect) that later batches reuse. Per batch, `prepare_batch` computes the cross-row rules'
aggregates in that session (`rules.PREPARE_SQL`, one pass over the batch), then Soda runs every check
in one more pass. Example rows for the report are read in the same session while it still holds them.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal

import psycopg
from psycopg.rows import TupleRow

from tasks.core.redact import scrub
from tasks.quality.contract import (
    BATCH_VAR,
    DEFAULT_MAX_ROWS,
    DEFAULT_MIN_ROWS,
    contract_yaml,
    data_source_yaml,
    database_name,
    offending_rows_sql,
)
from tasks.quality.rules import (
    AGGREGATE_TABLES,
    MAX_ROWS_VAR,
    MIN_ROWS_VAR,
    PREPARE_DDL,
    PREPARE_SQL,
    RULES,
    Severity,
    rule,
)
from tasks.store.staging import BatchContext
from tasks.store.tables import QUALITY_RESULTS

# Soda reads this when its modules are imported; telemetry offline costs ~7 s per run.
os.environ["SODA_CORE_TELEMETRY_ENABLED"] = "false"
# Soda logs every check of every batch (and its SQL) at INFO/DEBUG on the `soda` logger, which floods
# flow-run logs; its warnings and errors still come through, and the gate reports outcomes itself.
logging.getLogger("soda").setLevel(logging.WARNING)

logger = logging.getLogger(__name__)

Outcome = Literal["pass", "fail", "warn", "error"]
# The reason under which a blocked batch's rows that offend no rule go to quarantine.
BATCH_BLOCKED: Final = "batch_blocked"
# Example rows per failed or warned check, read for reports (the Prefect artifact).
EXAMPLE_ROWS: Final = 3
# The staging columns an example row shows: what identifies the row and what the rules look at.
EXAMPLE_COLUMNS: Final = (
    "series_id",
    "period",
    "raw_period",
    "frequency",
    "value",
    "raw_value",
    "value_flag",
    "unit",
    "canonical_unit",
    "canonical_value",
    "source",
    "dataset",
)
# Batch ids are inlined into SQL by Soda's variable substitution: allow only safe characters.
_SAFE_BATCH_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_SODA_OUTCOMES: Final[Mapping[str, Outcome]] = {"PASSED": "pass", "FAILED": "fail", "WARN": "warn"}
# Rules whose predicates read the per-batch aggregates: they cannot be evaluated if preparing fails.
_NEEDS_AGGREGATES: Final = frozenset(
    r.name for r in RULES if r.predicate is not None and any(t in r.predicate for t in AGGREGATE_TABLES)
)


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
    # Up to EXAMPLE_ROWS offending rows per failed or warned row rule (EXAMPLE_COLUMNS, JSON-ready, scrubbed).
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def row_failures(self) -> list[str]:
        """Failed fail-level row rules, in registry order: their offending rows can be set aside."""
        return [
            c.name for c in self.checks if c.outcome == "fail" and c.severity == "fail" and rule(c.name).scope == "row"
        ]

    @property
    def batch_failures(self) -> list[str]:
        """What blocks the batch as a whole: failed fail-level batch rules, and checks that could not run."""
        return [
            c.name
            for c in self.checks
            if c.outcome == "error" or (c.outcome == "fail" and c.severity == "fail" and rule(c.name).scope == "batch")
        ]

    def check(self, name: str) -> CheckOutcome:
        for outcome in self.checks:
            if outcome.name == name:
                return outcome
        raise KeyError(f"no check named {name!r} in this gate result")


class GateConfigError(ValueError):
    """The gate was called with an unusable argument; the message names it."""


# --- per-batch aggregates ---------------------------------------------------------------------------


def prepare_batch(conn: psycopg.Connection[Any], batch_id: str) -> None:
    """Computes the aggregates the cross-row rules read (`rules.PREPARE_SQL`) for one batch.

    Run it in the session, before evaluating those rules' predicates there (`offending_rows_sql`
    included). Inside an open transaction it joins it; otherwise it commits its own.
    """
    with conn.transaction():
        for statement in PREPARE_DDL:
            conn.execute(statement)
        for statement in PREPARE_SQL:
            conn.execute(statement, {"batch": batch_id})


def _drop_aggregates(conn: psycopg.Connection[Any]) -> None:
    """Drops the aggregate tables, so predicates that read them fail loudly instead of seeing no rows."""
    with contextlib.suppress(psycopg.Error), conn.transaction():
        for table in AGGREGATE_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def offending_examples(
    conn: psycopg.Connection[Any], batch_id: str, names: Sequence[str], *, limit: int = EXAMPLE_ROWS
) -> dict[str, list[dict[str, Any]]]:
    """Up to `limit` offending rows per named row rule (prepared session), scrubbed and JSON-ready."""
    columns = ", ".join(f"s.{c}" for c in EXAMPLE_COLUMNS)
    examples: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        r = rule(name)
        if r.predicate is None or limit <= 0:
            continue
        sql = f"{offending_rows_sql(r, columns=columns)} ORDER BY s.series_id, s.period LIMIT {int(limit)}"
        rows = conn.execute(sql, {"batch": batch_id}).fetchall()
        examples[name] = [scrub({c: _json_ready(v) for c, v in zip(EXAMPLE_COLUMNS, row, strict=True)}) for row in rows]
    return examples


# --- Soda: the contract parsed once, one data source connection per process and DSN -------------------


@functools.lru_cache(maxsize=8)
def _contract(database: str) -> str:
    return contract_yaml(database=database)


@functools.lru_cache(maxsize=8)
def _parsed_contract(database: str) -> tuple[str, Any]:
    """The contract text and Soda's parse of it (ruamel objects), made once: parsing costs ~40 ms a batch.

    Soda resolves variables when it reads values, on copies (`YamlValue.yaml_wrap`), never in the
    parsed tree, so one tree serves every batch.
    """
    from soda_core.common.yaml import ContractYamlSource

    text = _contract(database)
    tree = ContractYamlSource.from_str(text).parse().yaml_dict
    _drop_formatting(tree)
    return text, tree


def _drop_formatting(node: Any) -> None:
    """Drops ruamel's comment, style, tag and anchor records from a parsed tree, keeping line numbers.

    Soda deep-copies every mapping it reads and dumps each check back to YAML; without these records
    (a generated contract has no comments or anchors) both cost ~15% less. Best effort: ruamel
    objects without them are left as they are.
    """
    from ruamel.yaml import comments

    if isinstance(node, comments.CommentedMap | comments.CommentedSeq):
        for name in ("Comment", "Format", "Tag", "Anchor"):
            attribute = getattr(getattr(comments, name, None), "attrib", None)
            if not isinstance(attribute, str):
                continue
            with contextlib.suppress(AttributeError):
                delattr(node, attribute)
        for child in node.values() if isinstance(node, comments.CommentedMap) else node:
            _drop_formatting(child)


@functools.lru_cache(maxsize=8)
def _contract_source_class(database: str) -> Any:
    """A ContractYamlSource class whose parse() returns the cached tree of `database`'s contract."""
    from soda_core.common.yaml import ContractYamlSource, FileType, YamlObject

    _, tree = _parsed_contract(database)

    def parse(self: Any) -> Any:
        return YamlObject(self, tree)

    # type() rather than a class statement: Soda is untyped, and its YamlSource takes the file type
    # as a class keyword (__init_subclass__).
    return type("ParsedContractSource", (ContractYamlSource,), {"parse": parse}, file_type=FileType.CONTRACT)


def _contract_source(database: str) -> Any:
    """A contract source for Soda that skips parsing (a plain one if Soda ever changes shape)."""
    from soda_core.common.yaml import ContractYamlSource

    text = _contract(database)
    try:
        return _contract_source_class(database)(yaml_str=text)
    except Exception:  # pragma: no cover - a Soda upgrade changed the class: parse every time instead
        return ContractYamlSource.from_str(text)


class _DataSource:
    """Soda's postgres data source with its connection kept open across batches (one user at a time)."""

    def __init__(self, dsn: str) -> None:
        from soda_core.common.data_source_impl import DataSourceImpl
        from soda_core.common.yaml import DataSourceYamlSource

        impl = DataSourceImpl.from_yaml_source(DataSourceYamlSource.from_str(data_source_yaml(dsn)))
        if impl is None:
            raise RuntimeError("Soda could not build the data source")
        self.impl: Any = impl
        self.lock = threading.Lock()

    def connection(self) -> psycopg.Connection[Any]:
        """The open psycopg connection Soda will use (opened, or reopened when the last one broke)."""
        raw = getattr(self.impl.connection, "connection", None)
        if isinstance(raw, psycopg.Connection) and (raw.closed or raw.broken):
            self.close()
            raw = getattr(self.impl.connection, "connection", None)
        if raw is None:  # Soda logs why on the `soda` logger
            raise RuntimeError("Soda could not connect to the database")
        if not isinstance(raw, psycopg.Connection):
            raise RuntimeError(f"Soda's postgres connection is a {type(raw).__name__}, not a psycopg connection")
        return raw

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.impl.close_connection()


_sources: dict[tuple[int, str], _DataSource] = {}
_sources_lock = threading.Lock()


@contextlib.contextmanager
def _data_source(dsn: str) -> Iterator[_DataSource]:
    """The process's data source for `dsn`; a one-off one while another thread is using it."""
    key = (os.getpid(), dsn)  # a connection must never cross a fork
    with _sources_lock:
        source = _sources.get(key)
        if source is None:
            source = _sources[key] = _DataSource(dsn)
    if not source.lock.acquire(blocking=False):
        one_off = _DataSource(dsn)
        try:
            yield one_off
        finally:
            one_off.close()
        return
    try:
        yield source
    finally:
        with contextlib.suppress(Exception):
            # The attribute, not Soda's `connection` property: that one would reconnect.
            raw = getattr(getattr(source.impl, "data_source_connection", None), "connection", None)
            if isinstance(raw, psycopg.Connection) and not raw.closed:
                raw.rollback()  # end Soda's read transaction: no snapshot or lock outlives the batch
        source.lock.release()


def close_data_sources() -> None:
    """Closes the kept Soda connections of this process (tests, shutdown); later gates reopen them."""
    with _sources_lock:
        sources = [s for (pid, _), s in _sources.items() if pid == os.getpid()]
        _sources.clear()
    for source in sources:
        source.close()


atexit.register(close_data_sources)


def _variables(ctx: BatchContext, expected_rows: tuple[int, int] | None) -> dict[str, Any]:
    if not _SAFE_BATCH_ID.fullmatch(ctx.batch_id):
        raise GateConfigError(f"batch id {ctx.batch_id!r} has characters the gate does not accept")
    low, high = expected_rows if expected_rows is not None else (DEFAULT_MIN_ROWS, DEFAULT_MAX_ROWS)
    if low < 0 or high < low:
        raise GateConfigError(f"expected_rows {expected_rows!r} must be (min, max) with 0 <= min <= max")
    # Numbers stay numbers: Soda substitutes a whole-scalar variable with its value as given.
    return {BATCH_VAR: ctx.batch_id, MIN_ROWS_VAR: int(low), MAX_ROWS_VAR: int(high)}


def _verify(contract: Any, source: _DataSource, variables: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """Runs the contract on the open data source; returns Soda's check results and error messages."""
    from soda_core.contracts.contract_verification import ContractVerificationSession

    # verify_contract_locally() only takes file paths; it delegates to this same session call, which
    # also takes in-memory sources (the password never touches the disk) and an open data source
    # (left open by Soda, so the next batch reuses it).
    session = ContractVerificationSession.execute(
        contract_yaml_sources=[contract],
        data_source_impls=[source.impl],
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


def _prepare(source: _DataSource, batch_id: str) -> psycopg.Connection[Any]:
    """Prepares the batch in the data source's session, reconnecting once if the kept connection died."""
    try:
        conn = source.connection()
        prepare_batch(conn, batch_id)
        return conn
    except psycopg.OperationalError:
        source.close()  # e.g. the server closed an idle connection: one fresh attempt
        conn = source.connection()
        prepare_batch(conn, batch_id)
        return conn


def _outcomes(soda_results: list[Any], errors: list[str]) -> list[CheckOutcome]:
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
    return checks


def run_gate(
    dsn: str,
    ctx: BatchContext,
    *,
    expected_rows: tuple[int, int] | None = None,
    examples: int = EXAMPLE_ROWS,
) -> GateResult:
    """Runs every rule on the staged batch `ctx.batch_id`; `expected_rows` = (min, max) for the request.

    For failed or warned row rules the result also carries up to `examples` offending rows each.
    """
    started = time.perf_counter()
    variables = _variables(ctx, expected_rows)
    errors: list[str] = []
    soda_results: list[Any] = []
    unprepared = False
    examples_by_rule: dict[str, list[dict[str, Any]]] = {}
    try:
        database = database_name(dsn)
        with _data_source(dsn) as source:
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = _prepare(source, ctx.batch_id)
            except Exception as exc:  # the cross-row rules cannot be evaluated; the others still run
                unprepared = True
                errors.append(f"could not prepare the batch's aggregates: {type(exc).__name__}: {exc}")
                with contextlib.suppress(Exception):
                    _drop_aggregates(source.connection())
            soda_results, soda_errors = _verify(_contract_source(database), source, variables)
            errors += soda_errors
            flagged = _flagged(_outcomes(soda_results, []))
            if flagged and conn is not None and not unprepared and examples > 0:
                try:
                    examples_by_rule = offending_examples(conn, ctx.batch_id, flagged, limit=examples)
                except psycopg.Error as exc:  # a report detail: never let it change the verdict
                    logger.warning("could not read example rows of batch %s: %s", ctx.batch_id, exc)
    except Exception as exc:  # Soda raises for unusable YAML or connections: every check is unknown
        soda_results = []
        errors.append(f"Soda could not run the contract: {type(exc).__name__}: {exc}")

    checks = _outcomes(soda_results, errors)
    if unprepared:
        checks = [
            CheckOutcome(c.name, c.severity, "error", None, c.threshold) if c.name in _NEEDS_AGGREGATES else c
            for c in checks
        ]
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
        examples=examples_by_rule,
    )


def _flagged(checks: Sequence[CheckOutcome]) -> list[str]:
    """Row rules that failed or warned (the ones with rows to show)."""
    return [c.name for c in checks if c.outcome in ("fail", "warn") and rule(c.name).predicate is not None]


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
