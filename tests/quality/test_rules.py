"""The rule registry and the contract generated from it, without a database."""

from __future__ import annotations

import re

import pytest
import yaml

from tasks.core.frequencies import BY_NAME, FREQUENCIES
from tasks.normalize.observation import STAGED_COLUMNS
from tasks.normalize.units import unit_table
from tasks.quality.contract import (
    BATCH_FILTER,
    contract_dict,
    contract_yaml,
    data_source_yaml,
    database_name,
    offending_rows_literal_sql,
    offending_rows_sql,
    soda_expression,
    staged_column_types,
)
from tasks.quality.rules import (
    AGGREGATE_TABLES,
    BATCH_PARAM,
    DUPLICATES,
    GROUPS,
    JUMPS,
    KINDS,
    RULES,
    rule,
)
from tasks.store.tables import STAGING


def test_registry_has_at_least_25_uniquely_named_rules() -> None:
    names = [r.name for r in RULES]
    assert len(RULES) >= 25
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)


def test_every_rule_has_a_kind_a_severity_and_a_description() -> None:
    for r in RULES:
        assert r.kind in KINDS, r.name
        assert r.severity in ("fail", "warn"), r.name
        assert r.description.strip(), r.name
        assert r.threshold >= 0, r.name
        assert (r.predicate is None) == (r.measure != "offending_rows"), r.name


def test_every_kind_of_issue_7_is_covered() -> None:
    assert {r.kind for r in RULES} == set(KINDS)


def test_unknown_unit_is_a_fail_level_rule() -> None:
    unknown = rule("unknown_unit")
    assert (unknown.severity, unknown.kind) == ("fail", "validity")
    with pytest.raises(KeyError, match="no quality rule named 'nope'"):
        rule("nope")


def test_frequency_policy_covers_the_frequency_set() -> None:
    assert set(BY_NAME) == set(FREQUENCIES)
    frequency_sql = rule("frequency_known").predicate or ""
    assert all(f"'{f}'" in frequency_sql for f in FREQUENCIES)


def test_range_rule_is_generated_from_the_unit_table() -> None:
    sql = rule("value_in_plausible_range").predicate or ""
    canonical = {m.canonical_unit for m in unit_table().values() if m.min_value is not None or m.max_value is not None}
    assert canonical and all(f"WHEN '{c}' THEN" in sql for c in canonical)
    assert "WHEN 'USD/kWh' THEN s.canonical_value < 0 OR s.canonical_value > 10" in sql
    assert "WHEN 'MWh'" not in sql  # energy is unbounded: net generation can be negative


def _subqueries(predicate: str) -> list[str]:
    """The top-level `(SELECT ...)` subqueries of a predicate, parentheses balanced."""
    found, start = [], predicate.find("(SELECT")
    while start >= 0:
        depth = 0
        for end in range(start, len(predicate)):
            depth += {"(": 1, ")": -1}.get(predicate[end], 0)
            if depth == 0:
                break
        found.append(predicate[start : end + 1])
        start = predicate.find("(SELECT", end)
    return found


def test_cross_row_predicates_are_uncorrelated_and_restricted_to_the_batch() -> None:
    """Subqueries never mention the outer row (so they run once) and read staging and the per-batch
    aggregates only for the batch."""
    aliases = {STAGING: "b", GROUPS: "g", DUPLICATES: "d", JUMPS: "j"}
    for r in RULES:
        predicate = r.predicate or ""
        if "SELECT" not in predicate:
            continue
        for subquery in _subqueries(predicate):
            assert not re.search(r"(?<![\w.])s\.", subquery), r.name
            for table, alias in aliases.items():
                column = "ingest_batch_id" if table == STAGING else "batch_id"
                reads = subquery.count(f"{table} {alias}")
                assert reads == subquery.count(f"{alias}.{column} = {BATCH_PARAM}"), (r.name, table)
        assert "%" not in predicate.replace(BATCH_PARAM, ""), r.name


def test_cross_row_rules_read_the_per_batch_aggregates_not_the_whole_batch() -> None:
    """Only value_jump reads staging again, and only behind a test on the (usually empty) jump table."""
    for r in RULES:
        predicate = r.predicate or ""
        if "SELECT" not in predicate:
            continue
        assert any(table in predicate for table in AGGREGATE_TABLES), r.name
        if STAGING in predicate:
            assert r.name == "value_jump"
            assert predicate.index(JUMPS) < predicate.index(STAGING)


def test_contract_is_valid_yaml_with_one_check_per_rule() -> None:
    text = contract_yaml(database="eia")
    contract = yaml.safe_load(text)
    assert contract["dataset"] == "eia/eia/public/eia_series_staging"
    assert contract["filter"] == BATCH_FILTER == "ingest_batch_id = '${var.BATCH_ID}'"
    qualifiers = [next(iter(c.values()))["qualifier"] for c in contract["checks"]]
    assert qualifiers == [r.name for r in RULES]
    for r in RULES:
        assert r.name in text


def test_contract_checks_follow_the_rules() -> None:
    checks = {next(iter(c.values()))["qualifier"]: c for c in contract_dict(database="eia")["checks"]}
    assert checks["schema_matches"]["schema"]["allow_extra_columns"] is False
    assert checks["batch_not_empty"]["row_count"]["threshold"] == {
        "must_be_greater_than_or_equal": 1,
        "level": "fail",
    }
    assert checks["row_count_expected"]["row_count"]["threshold"] == {
        "must_be_between": {
            "greater_than_or_equal": "${var.MIN_ROWS}",
            "less_than_or_equal": "${var.MAX_ROWS}",
        },
        "level": "warn",
    }
    unknown = checks["unknown_unit"]["failed_rows"]
    row_test = "canonical_unit IS NULL AND (unit >= '!' COLLATE \"C\" OR btrim(unit) <> '')"
    # The row test, behind the same test on the batch's series groups (the Soda expression drops `s.`).
    group_test = "g.canonical_unit IS NULL AND (g.unit >= '!' COLLATE \"C\" OR btrim(g.unit) <> '')"
    assert unknown["expression"] == (
        "EXISTS (SELECT FROM pg_temp.eia_quality_groups g WHERE g.batch_id = '${var.BATCH_ID}' "
        f"AND ({group_test})) AND ({row_test})"
    )
    assert unknown["threshold"] == {"must_be_less_than_or_equal": 0, "level": "fail"}
    jump = checks["value_jump"]["failed_rows"]
    assert "'${var.BATCH_ID}'" in jump["expression"] and BATCH_PARAM not in jump["expression"]
    assert jump["threshold"]["level"] == "warn"


def test_schema_columns_come_from_the_record() -> None:
    types = staged_column_types()
    assert tuple(types) == STAGED_COLUMNS
    assert types["period"] == "timestamp with time zone"
    assert types["value"] == "double precision"
    assert types["metadata"] == "jsonb"
    assert types["ingest_ts"] == "bigint"
    assert types["series_id"] == "text"


def test_soda_expression_drops_only_the_row_alias() -> None:
    assert soda_expression("s.unit = 's.x' AND abs(s.value) > 1") == "unit = 's.x' AND abs(value) > 1"
    assert soda_expression("b.ingest_batch_id = %(batch)s") == "b.ingest_batch_id = '${var.BATCH_ID}'"
    assert soda_expression("units.unit IS NULL") == "units.unit IS NULL"


def test_offending_rows_sql_uses_the_predicate_and_the_batch() -> None:
    sql = offending_rows_sql(rule("period_end_after_period"))
    assert sql == (
        "SELECT s.* FROM eia_series_staging s WHERE s.ingest_batch_id = %(batch)s AND (s.period_end <= s.period)"
    )
    literal = offending_rows_literal_sql(rule("unknown_unit"), "b'1")
    assert "s.ingest_batch_id = 'b''1'" in literal and "g.batch_id = 'b''1'" in literal
    with pytest.raises(ValueError, match="batch-level"):
        offending_rows_sql(rule("batch_not_empty"))


def test_data_source_yaml_from_a_unix_socket_dsn() -> None:
    source = yaml.safe_load(data_source_yaml("postgresql://postgres:@/postgres?host=/run/eia-pg"))
    assert source["type"] == "postgres" and source["name"] == "eia"
    connection = source["connection"]
    assert (connection["host"], connection["port"], connection["user"]) == ("/run/eia-pg", 5432, "postgres")
    assert (connection["database"], connection["password"]) == ("postgres", "")
    assert "max_parallel_workers_per_gather=0" in connection["options"]


def test_data_source_yaml_from_a_tcp_dsn_with_secrets_and_options() -> None:
    dsn = "postgresql://eia:p%40ss%3Aw0rd@db.internal:6543/energy?sslmode=require&connect_timeout=5"
    connection = yaml.safe_load(data_source_yaml(dsn))["connection"]
    assert connection["host"] == "db.internal" and connection["port"] == 6543
    assert (connection["user"], connection["password"], connection["database"]) == (
        "eia",
        "p@ss:w0rd",
        "energy",
    )
    assert connection["sslmode"] == "require" and connection["connect_timeout"] == "5"
    assert database_name(dsn) == "energy"
    assert database_name("host=/tmp/x user=bob") == "bob"
