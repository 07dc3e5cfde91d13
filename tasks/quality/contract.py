"""Soda contract, offending-rows SQL and Soda data source, all generated from the rule registry.

Why it exists: issue 7 asks for one definition per rule. This module turns each `Rule` into the
Soda Core 4 check that gates a staged batch *and* into the SQL that selects the rule's offending
rows (for quarantine and reports), so the two can never disagree.

How rules become checks:
* row rules -> `failed_rows` checks with an `expression` (Soda bundles all of them into a single
  aggregation query over the batch: one scan, each uncorrelated subquery evaluated once). The
  expression is the predicate with the `s.` alias removed, because Soda selects from its own
  filtered CTE, and with the batch parameter replaced by the contract variable;
* `schema_matches` -> a `schema` check over the columns of `observation.STAGED_COLUMNS`, typed from
  the `Observation` annotations;
* the volume rules -> `row_count` checks (the range one reads the MIN_ROWS/MAX_ROWS variables).
Every check carries `qualifier: <rule name>`, which is how gate results map back to rules. The
contract `filter:` restricts every check to the batch; the predicates' own subqueries repeat the
batch condition because a filter never reaches inside them. The cross-row rules read session-local
aggregates (`rules.PREPARE_SQL`), so the contract runs in a session the gate has prepared for the
batch (`gate.prepare_batch`); in any other session those checks error, they never pass.

For Soda's own CLI (`eia quality contract`), `cli_contract_yaml` renders the same rules
self-contained: a check that reads the aggregates computes them in its own query (CTEs), on a
staged batch or, for audits, on the stored table; `cli_data_source_yaml` takes the connection from
the environment.
"""

from __future__ import annotations

import dataclasses
import getpass
import re
import types
import typing
from datetime import datetime
from typing import Any, Final, Literal

import psycopg
import yaml

from tasks.normalize.observation import INGEST_FIELDS, STAGED_COLUMNS, Observation
from tasks.quality.rules import (
    AGGREGATE_TABLES,
    BATCH_PARAM,
    MAX_ROWS_VAR,
    MIN_ROWS_VAR,
    RULES,
    Rule,
    aggregate_ctes,
    sql_literal,
)
from tasks.store.tables import STAGING, TIMESERIES

DATA_SOURCE_NAME: Final = "eia"
BATCH_VAR: Final = "BATCH_ID"
BATCH_FILTER: Final = f"ingest_batch_id = '${{var.{BATCH_VAR}}}'"
# The range used when a caller expects no particular row count: any count passes.
DEFAULT_MIN_ROWS: Final = 0
DEFAULT_MAX_ROWS: Final = 10**12

# PostgreSQL type names (as information_schema reports them) for the record's Python types.
_PG_TYPES: Final[dict[type, str]] = {
    str: "text",
    int: "bigint",
    float: "double precision",
    datetime: "timestamp with time zone",
    dict: "jsonb",
}
# Python types of the loader's columns (tasks/store/staging.BatchContext stamps them).
_INGEST_TYPES: Final[dict[str, type]] = {
    "tenant_id": str,
    "ingest_ts": int,
    "ingest_job_id": str,
    "ingest_run_id": str,
    "ingest_batch_id": str,
}
if set(_INGEST_TYPES) != set(INGEST_FIELDS):  # pragma: no cover - guards edits to INGEST_FIELDS
    raise RuntimeError("_INGEST_TYPES must cover exactly observation.INGEST_FIELDS")

_QUOTED_OR_ALIAS: Final = re.compile(r"'(?:[^']|'')*'|(?<![\w.])s\.(?=[a-z_])")


def _python_type(annotation: Any) -> type:
    """The concrete type of an annotation: `float | None` -> float, `dict[str, Any] | None` -> dict."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        if len(args) != 1:
            raise TypeError(f"cannot map {annotation!r} to one SQL type")
        return _python_type(args[0])
    origin = typing.get_origin(annotation)
    if isinstance(origin, type):
        return origin
    if isinstance(annotation, type):
        return annotation
    raise TypeError(f"cannot map {annotation!r} to a SQL type")


def staged_column_types() -> dict[str, str]:
    """Staging column -> PostgreSQL type, in COPY order, derived from the observation record."""
    hints = typing.get_type_hints(Observation)
    python_types = {f.name: _python_type(hints[f.name]) for f in dataclasses.fields(Observation)}
    python_types.update(_INGEST_TYPES)
    return {column: _PG_TYPES[python_types[column]] for column in STAGED_COLUMNS}


def soda_expression(predicate: str) -> str:
    """A rule predicate as a Soda check expression: `s.` removed, batch parameter -> variable."""
    unaliased = _QUOTED_OR_ALIAS.sub(lambda m: m.group(0) if m.group(0).startswith("'") else "", predicate)
    return unaliased.replace(BATCH_PARAM, f"'${{var.{BATCH_VAR}}}'")


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _check(rule: Rule) -> dict[str, Any]:
    """The Soda check (one-key mapping) for a rule."""
    level = {"level": rule.severity}
    common: dict[str, Any] = {"name": rule.name, "qualifier": rule.name}
    if rule.predicate is not None:
        return {
            "failed_rows": {
                **common,
                "expression": soda_expression(rule.predicate),
                "threshold": {"must_be_less_than_or_equal": _number(rule.threshold), **level},
            }
        }
    if rule.measure == "schema_mismatches":
        return {
            "schema": {
                **common,
                "allow_extra_columns": False,
                "allow_other_column_order": True,
                "threshold": {"must_be_less_than_or_equal": _number(rule.threshold), **level},
            }
        }
    if rule.measure == "row_count_at_least":
        return {
            "row_count": {
                **common,
                "threshold": {"must_be_greater_than_or_equal": _number(rule.threshold), **level},
            }
        }
    if rule.measure == "row_count_expected":
        return {
            "row_count": {
                **common,
                "threshold": {
                    "must_be_between": {
                        "greater_than_or_equal": f"${{var.{MIN_ROWS_VAR}}}",
                        "less_than_or_equal": f"${{var.{MAX_ROWS_VAR}}}",
                    },
                    **level,
                },
            }
        }
    raise ValueError(f"rule {rule.name!r}: no predicate and unknown measure {rule.measure!r}")


def contract_dict(*, database: str, schema: str = "public", rules: tuple[Rule, ...] = RULES) -> dict[str, Any]:
    """The contract as a mapping (see `contract_yaml`)."""
    return {
        "dataset": f"{DATA_SOURCE_NAME}/{database}/{schema}/{STAGING}",
        "description": "One staged batch of EIA observations; generated from tasks/quality/rules.py.",
        "filter": BATCH_FILTER,
        "variables": {
            BATCH_VAR: None,
            MIN_ROWS_VAR: {"default": DEFAULT_MIN_ROWS},
            MAX_ROWS_VAR: {"default": DEFAULT_MAX_ROWS},
        },
        "columns": [{"name": name, "data_type": pg_type} for name, pg_type in staged_column_types().items()],
        "checks": [_check(r) for r in rules],
    }


def contract_yaml(*, database: str, schema: str = "public", rules: tuple[Rule, ...] = RULES) -> str:
    """The Soda Core 4 contract for the staging table in `database`.`schema`, one check per rule.

    Variables: BATCH_ID (the batch to check; required), MIN_ROWS/MAX_ROWS (numbers; default: any).
    """
    text: str = yaml.safe_dump(
        contract_dict(database=database, schema=schema, rules=rules), sort_keys=False, width=1000
    )
    return text


# --- the contracts Soda's own CLI runs (`eia quality contract`) ------------------------------------
# `soda contract verify` opens its own connection, where the gate's session tables do not exist. These
# variants are the same rules made self-contained: a rule whose predicate reads the per-batch aggregates
# becomes a `failed_rows` query check that computes them in its own CTEs (`rules.aggregate_ctes`); the
# other checks are the gate's own. They cost a pass over the batch per such check (20 of them): about 5x
# the gate's time on a 100k-row batch, fine for an operator or an audit, far over the gate's 10% budget.
# So the gate keeps its session tables: one rule definition, two renderings.
Variant = Literal["staged", "stored"]
# The stored table's columns beyond the staged ones (tasks/store/models.SeriesObservation).
_STORED_EXTRA_TYPES: Final = {
    "revision": "integer",
    "created_at": "timestamp with time zone",
    "updated_at": "timestamp with time zone",
}
# The audit checks the whole stored table: the aggregates' batch id column holds this constant instead.
_STORED_SCOPE: Final = sql_literal(TIMESERIES)
_BATCH_ROWS_OF_B: Final = f"b.ingest_batch_id = {BATCH_PARAM}"


def _needs_aggregates(rule: Rule) -> bool:
    return rule.predicate is not None and any(table in rule.predicate for table in AGGREGATE_TABLES)


def _variant_sql(sql: str, variant: Variant) -> str:
    """Rule SQL (bind parameter, aggregate tables) rendered for Soda's CLI: no session, no bind."""
    for table in AGGREGATE_TABLES:
        sql = sql.replace(table, table.removeprefix("pg_temp."))
    if variant == "staged":
        return sql.replace(BATCH_PARAM, f"'${{var.{BATCH_VAR}}}'")
    # The audit: the stored table plays the batch (every row of it), the aggregates hold one scope.
    sql = sql.replace(f"{STAGING} b", f"{TIMESERIES} b").replace(_BATCH_ROWS_OF_B, "TRUE")
    sql = sql.replace(BATCH_PARAM, _STORED_SCOPE)
    if STAGING in sql:  # pragma: no cover - guards edits to the rules: staging read in a new way
        raise ValueError("a rule reads the staging table in a way the stored variant cannot rewrite")
    return sql


def _query_check(rule: Rule, variant: Variant) -> dict[str, Any]:
    """A self-contained `failed_rows` query check for a rule that reads the per-batch aggregates."""
    assert rule.predicate is not None
    table = STAGING if variant == "staged" else TIMESERIES
    where = f"s.ingest_batch_id = {BATCH_PARAM} AND " if variant == "staged" else ""
    query = f"WITH {aggregate_ctes()}\nSELECT s.* FROM {table} s WHERE {where}({rule.predicate})"
    return {
        "failed_rows": {
            "name": rule.name,
            "qualifier": rule.name,
            "query": _tidy(_variant_sql(query, variant)),
            "threshold": {"must_be_less_than_or_equal": _number(rule.threshold), "level": rule.severity},
        }
    }


def _cli_check(rule: Rule, variant: Variant) -> dict[str, Any]:
    if _needs_aggregates(rule):
        return _query_check(rule, variant)
    # The gate's own check: a predicate over one row (no batch parameter, no other table), a schema or a count.
    if rule.predicate is not None and (BATCH_PARAM in rule.predicate or STAGING in rule.predicate):
        raise ValueError(f"rule {rule.name!r} reads other rows without the aggregates: give it a query check")
    return _check(rule)


def cli_contract_dict(
    *, database: str, schema: str = "public", variant: Variant = "staged", rules: tuple[Rule, ...] = RULES
) -> dict[str, Any]:
    """The contract Soda's CLI can run (see `cli_contract_yaml`), as a mapping."""
    columns = staged_column_types()
    contract: dict[str, Any]
    if variant == "staged":
        contract = contract_dict(database=database, schema=schema, rules=rules)
        contract["description"] = (
            "One staged batch of EIA observations (variable BATCH_ID); self-contained for Soda's CLI; "
            "generated from tasks/quality/rules.py."
        )
    else:
        columns = {**columns, **_STORED_EXTRA_TYPES}
        contract = {
            "dataset": f"{DATA_SOURCE_NAME}/{database}/{schema}/{TIMESERIES}",
            "description": "Audit of every stored EIA observation; generated from tasks/quality/rules.py.",
            "variables": {
                MIN_ROWS_VAR: {"default": DEFAULT_MIN_ROWS},
                MAX_ROWS_VAR: {"default": DEFAULT_MAX_ROWS},
            },
        }
    contract["columns"] = [{"name": name, "data_type": pg_type} for name, pg_type in columns.items()]
    contract["checks"] = [_cli_check(r, variant) for r in rules]
    return contract


class _ReadableDumper(yaml.SafeDumper):
    """Writes multi-line strings (the check queries) as literal blocks, as a person would."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    if "\n" in text:
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    return dumper.represent_str(text)


_ReadableDumper.add_representer(str, _represent_str)


def _tidy(sql: str) -> str:
    # A literal block cannot hold trailing blanks, and blank lines only lengthen the file.
    return "\n".join(line.rstrip() for line in sql.splitlines() if line.strip())


def cli_contract_yaml(
    *, database: str, schema: str = "public", variant: Variant = "staged", rules: tuple[Rule, ...] = RULES
) -> str:
    """A Soda Core 4 contract that `soda contract verify` runs in a session of its own.

    `staged`: one staged batch, like the gate's contract (variables BATCH_ID, required, and
    MIN_ROWS/MAX_ROWS); `stored`: the audit of the whole stored table, with the same rules (the table
    plays the batch: a series is judged against its newest stored row, duplicates cannot exist there).
    Every check keeps its rule's name as qualifier, so results map back to the registry.
    """
    text: str = yaml.dump(
        cli_contract_dict(database=database, schema=schema, variant=variant, rules=rules),
        Dumper=_ReadableDumper,
        sort_keys=False,
        width=1000,
    )
    return text


def offending_rows_sql(rule: Rule, *, columns: str = "s.*") -> str:
    """SQL selecting the rule's offending rows of one batch; bind `{"batch": batch_id}` when executing.

    A cross-row rule reads the batch's aggregates: run `gate.prepare_batch(conn, batch_id)` in the same
    session first (without it the query fails; it never silently finds nothing).
    """
    if rule.predicate is None:
        raise ValueError(f"rule {rule.name!r} is batch-level: it has no offending rows")
    return f"SELECT {columns} FROM {STAGING} s WHERE s.ingest_batch_id = {BATCH_PARAM} AND ({rule.predicate})"


def offending_rows_literal_sql(rule: Rule, batch_id: str, *, columns: str = "s.*") -> str:
    """`offending_rows_sql` with the batch id inlined as a literal (for reports and ad-hoc use)."""
    return offending_rows_sql(rule, columns=columns).replace(BATCH_PARAM, sql_literal(batch_id))


# Planner settings for the gate's own session (set once, at connect: the gate keeps the connection).
# The gate runs right after COPY, usually before autovacuum has analyzed staging, so the planner
# believes a 100k-row batch has one row and picks nested loops and sort-based grouping (2x slower).
# Every check is a batch-scale hash operation, so the session asks for hashing outright. Parallel
# workers would each rebuild every hashed subquery (3x the work on a 2-core host); 64MB keeps a
# 100k-row batch's hash tables in memory. Only where no alternative exists (LATERAL lookups) does a
# nested loop remain. JIT compilation (on by default where PostgreSQL is built with LLVM) would cost
# more than these sub-second queries once staging has statistics, so it is off.
GATE_SESSION_OPTIONS: Final = (
    "-c max_parallel_workers_per_gather=0 -c work_mem=64MB -c enable_nestloop=off -c enable_sort=off -c jit=off"
)
# Connection keys Soda's postgres data source declares; every other libpq key is passed through
# to psycopg.connect unchanged (its connection model allows extra keys).
_SODA_KEYS: Final = {
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
}


def data_source_yaml(dsn: str) -> str:
    """Soda's postgres data-source YAML for a libpq DSN (URL or key=value), Unix sockets included.

    The YAML holds the password when the DSN does; keep it in memory, never write it to disk or logs.
    """
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    user = str(info.get("user") or getpass.getuser())
    connection: dict[str, Any] = {
        "host": str(info.get("host") or "localhost"),
        "port": int(str(info.get("port") or 5432).split(",")[0]),
        "database": str(info.get("dbname") or user),
        "user": user,
        # Empty means "none given": libpq then falls back to PGPASSWORD / .pgpass as usual.
        "password": str(info.get("password") or ""),
    }
    for key in ("sslmode", "sslcert", "sslkey", "sslrootcert"):
        if info.get(key):
            connection[key] = str(info[key])
    for key, value in info.items():
        if key not in _SODA_KEYS and value is not None:
            connection[key] = str(value)
    connection.setdefault("application_name", "eia-pipeline-quality-gate")
    connection["options"] = f"{connection.get('options', '')} {GATE_SESSION_OPTIONS}".strip()
    text: str = yaml.safe_dump(
        {"name": DATA_SOURCE_NAME, "type": "postgres", "connection": connection}, sort_keys=False
    )
    return text


# The environment variables the CLI data source reads (libpq's own names, so `psql` agrees with Soda).
CLI_CONNECTION_ENV: Final = {
    "host": "PGHOST",
    "port": "PGPORT",
    "database": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
}


def cli_data_source_yaml() -> str:
    """Soda's postgres data-source YAML for `soda contract verify`, holding no connection detail.

    Every connection value is a `${env.NAME}` reference (`CLI_CONNECTION_ENV`) that Soda resolves
    when it reads the file; all of them must be set (PGPASSWORD may be empty: libpq then reads
    ~/.pgpass). The session gets the gate's planner options, so both plan the rules alike.
    """
    connection: dict[str, Any] = {key: f"${{env.{name}}}" for key, name in CLI_CONNECTION_ENV.items()}
    connection["application_name"] = "eia-pipeline-quality-cli"
    connection["options"] = GATE_SESSION_OPTIONS
    text: str = yaml.safe_dump(
        {"name": DATA_SOURCE_NAME, "type": "postgres", "connection": connection}, sort_keys=False
    )
    return text


def database_name(dsn: str) -> str:
    """The database a DSN connects to (the contract's dataset is qualified by it)."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    return str(info.get("dbname") or info.get("user") or getpass.getuser())
