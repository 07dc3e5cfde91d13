"""The data-quality rule registry: every check on a staged batch, defined exactly once.

Why it exists: the Soda contract that gates a batch (`contract.py`), the SQL that finds the
offending rows for quarantine and reports, the results table and the tests are all generated from
the `Rule` objects below, so a rule can never mean one thing to the gate and another to the
quarantine. Adding a rule here adds a Soda check, an offending-rows query and (by a test that
fails otherwise) a planted-defect test.

Conventions
-----------
* A row rule's `predicate` is a SQL boolean over one row of `eia_series_staging` aliased `s`. It is
  TRUE for an offending row and FALSE or NULL otherwise (NULL never offends, so a rule can stay
  silent about rows another rule owns: e.g. period checks ignore unknown frequencies, which
  `frequency_known` reports).
* Rules that look at other rows (of the batch, or of `eia_series_timeseries`) read per-batch
  aggregates that `PREPARE_SQL` computes once per batch into session-local tables (see "per-batch
  aggregates" below), through *uncorrelated* subqueries restricted to the batch by the bind
  parameter `%(batch)s` (`BATCH_PARAM`), e.g. `(s.tenant_id, s.series_id) IN (SELECT ... FROM
  pg_temp.eia_quality_groups g WHERE g.batch_id = %(batch)s ...)`. Each such subquery runs once per
  check (a hashed sub-plan over a few rows), never once per row, so every check is set-based SQL (the
  gate's session settings in `contract.GATE_SESSION_OPTIONS` keep it that way when staging has no
  statistics yet). Predicates never contain `%` otherwise.
* Rules are orthogonal where they can be: a planted defect trips its own fail-level rule and no
  other (consistency rules ignore unknown frequencies and units, value rules ignore non-finite
  numbers, `period_end_matches_frequency` ignores ends before the start, ...). The tests check it.
* `threshold` is the number of offending rows a row rule allows (a count, not a fraction); every
  rule here allows 0. Rules without a row predicate say what they measure in `measure`.
* `scope` says what a failing fail-level rule holds back. A "row" rule has a predicate: the load sets
  its offending rows aside for quarantine and merges the rest (tasks/load/batch.py). A "batch" rule
  measures the batch as a whole (its schema, its size): failing it blocks the batch. Consistency rules
  judge a series against its newest stored row, or, for a new series, against the batch's majority,
  so the offending rows are the ones that differ, not the whole series.
* Parameters come from one place each: units (canonical units, currencies, plausible ranges) from
  the unit table `tasks/normalize/units.csv`; frequencies (names, lengths, alignment, future
  tolerance, freshness) from the frequency table `tasks/core/frequencies.py`; value tokens from
  `values.KNOWN_TOKENS`. SQL lists and CASE expressions are generated from them when this module
  is imported; no copy of the data is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Final, Literal

from tasks.core.frequencies import BY_VOLUME, FREQUENCIES, Frequency, Months, Span
from tasks.normalize.observation import (
    MAX_SERIES_ID_LENGTH,
    MAX_TEXT_LENGTH,
    SOURCE_API,
    SOURCE_BULK,
)
from tasks.normalize.units import unit_table
from tasks.normalize.values import KNOWN_TOKENS
from tasks.store.tables import METADATA, STAGING, TIMESERIES

Severity = Literal["fail", "warn"]
# What a failing fail-level rule holds back. "row": its offending rows can be named; they go to
# quarantine under the rule's name and the rest of the batch merges. "batch": the batch as a whole is
# wrong (its schema, its emptiness); the whole batch is blocked.
Scope = Literal["row", "batch"]
Kind = Literal["schema", "completeness", "validity", "uniqueness", "consistency", "volume", "freshness", "anomaly"]
# What a rule measures: offending rows (row rules), schema differences, or the batch's row count.
Measure = Literal["offending_rows", "schema_mismatches", "row_count_at_least", "row_count_expected"]

KINDS: Final[tuple[Kind, ...]] = (
    "schema",
    "completeness",
    "validity",
    "uniqueness",
    "consistency",
    "volume",
    "freshness",
    "anomaly",
)
# The psycopg named parameter that predicates use for the batch id (bound by the caller).
BATCH_PARAM: Final = "%(batch)s"
# Variables of the contract for the expected row count (passed to Soda as numbers).
MIN_ROWS_VAR: Final = "MIN_ROWS"
MAX_ROWS_VAR: Final = "MAX_ROWS"


SOURCES: Final = (SOURCE_API, SOURCE_BULK)
# Anomaly rule: a value whose magnitude exceeds ANOMALY_FACTOR x the median magnitude of the series'
# recent values (the batch plus the newest ANOMALY_HISTORY_ROWS stored rows), when the median is
# computed from at least ANOMALY_MIN_POINTS values.
ANOMALY_FACTOR: Final = 10.0
ANOMALY_HISTORY_ROWS: Final = 24
ANOMALY_MIN_POINTS: Final = 3
# canonical_value must equal value * conversion_factor within this relative tolerance.
CANONICAL_RELATIVE_TOLERANCE: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Rule:
    """One quality rule; see the module docstring for the predicate and threshold conventions."""

    name: str
    severity: Severity
    kind: Kind
    description: str
    predicate: str | None = None  # TRUE for an offending staging row `s`; None for batch-level rules
    threshold: float = 0  # offending_rows / schema_mismatches: most allowed; row_count_at_least: fewest
    measure: Measure = "offending_rows"
    scope: Scope = "row"

    def __post_init__(self) -> None:
        # A row rule must be able to name its rows; a batch rule measures the batch, never rows.
        if (self.scope == "row") != (self.predicate is not None):
            raise ValueError(
                f"rule {self.name!r}: scope {self.scope!r} needs {'a' if self.scope == 'row' else 'no'} predicate"
            )


# --- SQL building helpers (all literals come from trusted constants, quoted here) -------------------


def sql_literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _sql_number(number: float) -> str:
    return repr(float(number)) if not float(number).is_integer() else str(int(number))


def _sql_in_list(values: Iterable[str]) -> str:
    return ", ".join(sql_literal(v) for v in sorted(values))


def _quantity(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _whole(span: timedelta, unit: timedelta, name: str) -> str:
    count, rest = divmod(span, unit)
    if rest:  # pragma: no cover - guards edits to the frequency table
        raise ValueError(f"{span} is no whole number of {name}s")
    return _quantity(count, name)


def _months_interval(span: Months) -> str:
    years, rest = divmod(span.count, 12)
    return _quantity(span.count, "month") if rest else _quantity(years, "year")


def _stride(span: Span) -> str:
    """A period length or alignment as a SQL interval (text): calendar months, or a fixed stride in
    hours, because "1 day" would follow the session's DST rules."""
    return _months_interval(span) if isinstance(span, Months) else _whole(span, timedelta(hours=1), "hour")


def _allowance(span: Span) -> str:
    """A tolerance or freshness allowance as a SQL interval (text): calendar months, or whole days."""
    return _months_interval(span) if isinstance(span, Months) else _whole(span, timedelta(days=1), "day")


def _frequency_expr(frequency: str, expression: Callable[[Frequency], str]) -> str:
    """CASE <frequency column> WHEN '<frequency>' THEN <expression(frequency)> ... END (NULL if unknown).

    The branches are tried in order, one text comparison each: the frequencies with the most rows first.
    """
    whens = " ".join(f"WHEN {sql_literal(f.name)} THEN {expression(f)}" for f in BY_VOLUME)
    return f"CASE {frequency} {whens} END"


_UTC_EPOCH: Final = "timestamptz '2000-01-03 00:00:00+00'"  # a Monday; any midnight UTC works
_TRUNCATE_TO: Final[Mapping[int, str]] = {12: "year", 3: "quarter", 1: "month"}  # date_trunc fields by months


def _period_start(frequency: Frequency, column: str) -> str:
    """The start of the period containing `column`, in UTC: the last boundary of the frequency's alignment.

    Fixed strides use date_bin from a UTC midnight (cheap, independent of the session time zone);
    calendar alignments truncate the UTC wall clock.
    """
    alignment = frequency.alignment
    if isinstance(alignment, Months):
        return f"date_trunc('{_TRUNCATE_TO[alignment.count]}', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    return f"date_bin(interval '{_stride(alignment)}', {column}, {_UTC_EPOCH})"


def _period_end(frequency: Frequency, column: str) -> str:
    length = f"interval '{_stride(frequency.length)}'"
    if frequency.calendar:
        return f"({column} AT TIME ZONE 'UTC' + {length}) AT TIME ZONE 'UTC'"
    return f"{column} + {length}"


def _forecast_tolerances() -> str:
    """The month-based future tolerances, e.g. "3 years for monthly/quarterly/annual"."""
    names: dict[str, list[str]] = {}
    for f in BY_VOLUME:
        if isinstance(f.future_tolerance, Months):
            names.setdefault(_allowance(f.future_tolerance), []).append(f.name)
    return ", ".join(f"{span} for {'/'.join(group)}" for span, group in names.items())


def _blank(column: str) -> str:
    # The C-collation comparison is a cheap prefilter: only '' and strings starting with a space or
    # a control character sort before '!', so btrim() runs for almost no rows.
    return f"({column} IS NULL OR ({column} < '!' COLLATE \"C\" AND btrim({column}) = ''))"


def _not_blank(column: str) -> str:
    return f"({column} >= '!' COLLATE \"C\" OR btrim({column}) <> '')"


def _longer_than(columns: Iterable[str], limit: int) -> str:
    """Any column has more than `limit` characters (octet_length, which is never smaller, prefilters)."""
    columns = list(columns)
    octets = ", ".join(f"octet_length({c})" for c in columns)
    chars = ", ".join(f"length({c})" for c in columns)
    return f"(greatest({octets}) > {limit} AND greatest({chars}) > {limit})"


def _finite(column: str) -> str:
    # NaN sorts above Infinity in PostgreSQL, so this is FALSE for NaN and both infinities.
    return f"abs({column}) < 'Infinity'::float8"


def _canonical_ranges() -> dict[str, tuple[float | None, float | None]]:
    """Plausible range per canonical unit: the widest range of the unit-table rows mapping to it."""
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for mapping in unit_table().values():
        low, high = mapping.min_value, mapping.max_value
        if mapping.canonical_unit in ranges:
            old_low, old_high = ranges[mapping.canonical_unit]
            low = None if low is None or old_low is None else min(low, old_low)
            high = None if high is None or old_high is None else max(high, old_high)
        ranges[mapping.canonical_unit] = (low, high)
    return ranges


def _range_test(low: str, high: str, unit: str) -> str:
    """`low` or `high` (SQL numbers) lie outside the plausible range of canonical unit `unit`.

    For a row pass its canonical_value twice; for a group its min and max (NULL for units without
    bounds, and for unknown units).
    """
    whens = []
    for canonical, (lo, hi) in sorted(_canonical_ranges().items()):
        tests = ([f"{low} < {_sql_number(lo)}"] if lo is not None else []) + (
            [f"{high} > {_sql_number(hi)}"] if hi is not None else []
        )
        if tests:
            whens.append(f"WHEN {sql_literal(canonical)} THEN {' OR '.join(tests)}")
    return f"CASE {unit} {' '.join(whens)} END" if whens else "FALSE"


def _canonical_pair_unknown() -> str:
    """canonical_unit is set but (canonical_unit, canonical_currency) is no pair of the unit table."""
    by_currency: dict[str | None, set[str]] = {}
    for m in unit_table().values():
        by_currency.setdefault(m.canonical_currency, set()).add(m.canonical_unit)
    known = " OR ".join(
        f"(s.canonical_currency {'IS NULL' if c is None else '= ' + sql_literal(c)} "
        f"AND s.canonical_unit IN ({_sql_in_list(units)}))"
        for c, units in sorted(by_currency.items(), key=lambda item: item[0] or "")
    )
    return f"s.canonical_unit IS NOT NULL AND NOT ({known})"


_BATCH_ROWS: Final = f"{STAGING} b WHERE b.ingest_batch_id = {BATCH_PARAM}"

# --- per-batch aggregates ---------------------------------------------------------------------------
# The cross-row rules (uniqueness, consistency, freshness, anomaly) compare rows of a series with each
# other and with the newest stored rows. Asked of the staged batch directly, each would scan and group
# the whole batch once more (8 extra scans: ~0.3 s at 100k rows). Instead `PREPARE_SQL` scans the batch
# once, for its series groups and the periods each series holds twice, writes what the rules need into
# three small session-local tables, and their predicates read those. The groups also let the gate skip
# row tests that cannot fail: see `_group_guard`. Consequence: run `PREPARE_DDL` and `PREPARE_SQL` (bind `batch`)
# in a session before evaluating a predicate that names an AGGREGATE_TABLES table there
# (`gate.prepare_batch` does it); in a session without them such a predicate fails loudly ("relation
# does not exist"), it never passes silently.
GROUPS: Final = "pg_temp.eia_quality_groups"  # one row per distinct _GROUP_KEYS of the batch
DUPLICATES: Final = "pg_temp.eia_quality_duplicates"  # (tenant, series, period) keys staged more than once
JUMPS: Final = "pg_temp.eia_quality_jumps"  # series whose values may jump, with the bound |value| must stay under
AGGREGATE_TABLES: Final = (GROUPS, DUPLICATES, JUMPS)
# A series group: the rows of one series that agree on everything the consistency rules compare.
_GROUP_KEYS: Final = ("tenant_id", "series_id", "frequency", "unit", "canonical_unit", "canonical_currency", "source")
# Each aggregate table's columns and types: its session table (PREPARE_DDL) and its CTE (aggregate_ctes).
AGGREGATE_COLUMNS: Final[Mapping[str, tuple[tuple[str, str], ...]]] = MappingProxyType(
    {
        GROUPS: (
            ("batch_id", "text"),
            *((k, "text") for k in _GROUP_KEYS),
            ("rows", "bigint"),
            ("max_period_end", "timestamptz"),
            ("canonical_values", "bigint"),
            ("min_value", "float8"),
            ("max_value", "float8"),
            ("min_canonical", "float8"),
            ("max_canonical", "float8"),
            ("stored_frequency", "text"),
            ("stored_unit", "text"),
            ("stored_canonical_unit", "text"),
        ),
        DUPLICATES: (("batch_id", "text"), ("tenant_id", "text"), ("series_id", "text"), ("period", "timestamptz")),
        JUMPS: (("batch_id", "text"), ("tenant_id", "text"), ("series_id", "text"), ("jump_above", "float8")),
    }
)
PREPARE_DDL: Final = tuple(
    f"CREATE TEMP TABLE IF NOT EXISTS {table.removeprefix('pg_temp.')} "
    f"({', '.join(f'{name} {sql_type}' for name, sql_type in AGGREGATE_COLUMNS[table])})"
    for table in AGGREGATE_TABLES
)


# The merge writes a series' metadata row with its first stored row (tasks/store/merge.py), so a series
# without one has no stored rows. Asked first, as a one-time filter, it spares a new series the newest-row
# lookup, which on plain PostgreSQL probes every monthly partition (hundreds) to find nothing.
_STORED_SERIES: Final = (
    f"EXISTS (SELECT 1 FROM {METADATA} m WHERE m.tenant_id = a.tenant_id AND m.series_id = a.series_id)"
)


@dataclass(frozen=True, slots=True)
class _AggregateSql:
    """The per-batch aggregates as SELECTs, so the gate's session tables (`PREPARE_SQL`) and the
    self-contained CTEs of Soda's CLI contract (`aggregate_ctes`) are the same SQL."""

    series_groups: str  # body of CTE `a`: the batch's series groups, each with its periods
    groups: str  # SELECT for GROUPS, from `a`
    duplicates: str  # SELECT for DUPLICATES, from `a`
    jump_ctes: str  # CTEs `series`, `suspects`, `points` (from GROUPS) that JUMPS is selected from
    jumps: str  # SELECT for JUMPS


def _aggregate_sql() -> _AggregateSql:
    keys = ", ".join(f"b.{k}" for k in _GROUP_KEYS)
    # A series without any stored row (its groups found none) has no history: no index is searched for it.
    history = f"""SELECT abs(t.canonical_value) AS x FROM {TIMESERIES} t
            WHERE s.stored AND t.tenant_id = s.tenant_id AND t.series_id = s.series_id
                AND {_finite("t.canonical_value")}
            ORDER BY t.period DESC LIMIT {ANOMALY_HISTORY_ROWS}"""
    # Bounds on |canonical value| from a group's signed min/max: exact for one-signed groups; a group
    # crossing zero (or holding NaN) gets the lower bound 0, which only makes it a suspect below.
    low_abs = (
        "CASE WHEN g.min_canonical >= 0 THEN g.min_canonical WHEN g.max_canonical <= 0 THEN -g.max_canonical ELSE 0 END"
    )
    high_abs = "greatest(abs(g.min_canonical), abs(g.max_canonical))"
    return _AggregateSql(
        # One pass over the batch: its series groups, each with its periods, from which the periods
        # staged twice are found series by series (a thousand-row hash per series is far cheaper than
        # one hash over every (series, period) of the batch).
        series_groups=f"""
            SELECT {keys}, count(*) AS rows, max(b.period_end) AS max_period_end,
                count(b.canonical_value) AS canonical_values, min(b.value) AS min_value, max(b.value) AS max_value,
                min(b.canonical_value) AS min_canonical, max(b.canonical_value) AS max_canonical,
                array_agg(b.period) AS periods
            FROM {_BATCH_ROWS} GROUP BY {keys}
        """,
        duplicates=f"""
            SELECT {BATCH_PARAM}, s.tenant_id, s.series_id, d.period
            FROM (SELECT DISTINCT a.tenant_id, a.series_id FROM a) s
            CROSS JOIN LATERAL (SELECT p.period FROM a g CROSS JOIN LATERAL unnest(g.periods) AS p(period)
                WHERE g.tenant_id = s.tenant_id AND g.series_id = s.series_id
                GROUP BY p.period HAVING count(*) > 1) d
        """,
        groups=f"""
        SELECT {BATCH_PARAM}, {", ".join(f"a.{k}" for k in _GROUP_KEYS)}, a.rows, a.max_period_end,
            a.canonical_values, a.min_value, a.max_value, a.min_canonical, a.max_canonical,
            l.frequency, l.unit, l.canonical_unit
        FROM a LEFT JOIN LATERAL (SELECT t.frequency, t.unit, t.canonical_unit FROM {TIMESERIES} t
            WHERE {_STORED_SERIES} AND t.tenant_id = a.tenant_id AND t.series_id = a.series_id
            ORDER BY t.period DESC LIMIT 1) l ON TRUE""",
        # Anomaly bounds. A value can only jump when the series' largest |value| exceeds the factor times
        # its smallest (the median is never below the minimum), so medians are computed for those
        # "suspect" series alone: for steady series (most of them) no value is sorted at all.
        jump_ctes=f"""series AS (
            SELECT g.tenant_id, g.series_id, sum(g.canonical_values) AS n, min({low_abs}) AS lo, max({high_abs}) AS hi,
                bool_or(g.stored_frequency IS NOT NULL) AS stored
            FROM {GROUPS} g WHERE g.batch_id = {BATCH_PARAM} GROUP BY g.tenant_id, g.series_id
        ), suspects AS MATERIALIZED (
            SELECT s.tenant_id, s.series_id, s.stored FROM series s
            CROSS JOIN LATERAL (SELECT count(*) AS n, min(h.x) AS lo, max(h.x) AS hi FROM ({history}) h) h
            WHERE s.n + h.n >= {ANOMALY_MIN_POINTS}
                AND NOT (greatest(s.hi, h.hi) <= {_sql_number(ANOMALY_FACTOR)} * least(s.lo, h.lo))
        ), points AS (
            SELECT b.tenant_id, b.series_id, abs(b.canonical_value) AS x
            FROM {STAGING} b JOIN suspects s ON s.tenant_id = b.tenant_id AND s.series_id = b.series_id
            WHERE b.ingest_batch_id = {BATCH_PARAM} AND {_finite("b.canonical_value")}
            UNION ALL
            SELECT s.tenant_id, s.series_id, h.x FROM suspects s CROSS JOIN LATERAL ({history}) h
        )""",
        jumps=f"""
        SELECT {BATCH_PARAM}, m.tenant_id, m.series_id, {_sql_number(ANOMALY_FACTOR)} * m.median_abs
        FROM (SELECT p.tenant_id, p.series_id, count(*) AS n,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY p.x) AS median_abs
            FROM points p GROUP BY p.tenant_id, p.series_id) m
        WHERE m.n >= {ANOMALY_MIN_POINTS} AND m.median_abs > 0""",
    )


_AGGREGATES: Final = _aggregate_sql()
PREPARE_SQL: Final = (
    # The tables are session-local and only ever hold the batch being checked.
    f"DELETE FROM {GROUPS}",
    f"DELETE FROM {DUPLICATES}",
    f"DELETE FROM {JUMPS}",
    f"""WITH a AS MATERIALIZED ({_AGGREGATES.series_groups}), duplicates AS (
            INSERT INTO {DUPLICATES}{_AGGREGATES.duplicates})
        INSERT INTO {GROUPS}{_AGGREGATES.groups}""",
    f"WITH {_AGGREGATES.jump_ctes}\n        INSERT INTO {JUMPS}{_AGGREGATES.jumps}",
)


def aggregate_ctes() -> str:
    """The per-batch aggregates as a WITH list, for a query that needs no prepared session.

    Each AGGREGATE_TABLES table becomes a CTE named like it without `pg_temp.` (a qualified name
    never refers to a CTE, so predicates read the CTEs once `pg_temp.` is dropped from them):
    `f"WITH {aggregate_ctes()} SELECT ... WHERE <predicate without pg_temp.>"`. PostgreSQL computes
    only the CTEs a query reads. Bind `batch` as for PREPARE_SQL.
    """
    # Named columns: the SELECTs are written for INSERT, where position alone names a column.
    bare = {
        table: f"{table.removeprefix('pg_temp.')} ({', '.join(name for name, _ in AGGREGATE_COLUMNS[table])})"
        for table in AGGREGATE_TABLES
    }
    jump_ctes = _AGGREGATES.jump_ctes.replace(GROUPS, GROUPS.removeprefix("pg_temp."))
    return (
        f"a AS MATERIALIZED ({_AGGREGATES.series_groups}),\n"
        f"{bare[GROUPS]} AS MATERIALIZED ({_AGGREGATES.groups}),\n"
        f"{bare[DUPLICATES]} AS ({_AGGREGATES.duplicates}),\n"
        f"{jump_ctes},\n"
        f"{bare[JUMPS]} AS ({_AGGREGATES.jumps})"
    )


_BATCH_GROUPS: Final = f"{GROUPS} g WHERE g.batch_id = {BATCH_PARAM}"
# A quoted literal (left alone), or the row alias `s.` before a column name.
_LITERAL_OR_COLUMN: Final = re.compile(r"'(?:[^']|'')*'|(?<![\w.])s\.([a-z_]+)")


def _group_guard(group_condition: str) -> str:
    """TRUE when some series group of the batch (`GROUPS` g) satisfies `group_condition`.

    Written before a row test as `<guard> AND (<row test>)`, it lets the gate skip the test on clean
    batches: the guard is an uncorrelated EXISTS, which PostgreSQL evaluates once per query (an
    init-plan over a few rows), so a FALSE guard costs each row one parameter read. The condition
    must hold for every group holding an offending row; then the pair selects exactly the rows of
    the row test.
    """
    return f"EXISTS (SELECT FROM {_BATCH_GROUPS} AND ({group_condition}))"


def _by_group(predicate: str) -> str:
    """A row predicate over group keys only, evaluated once per group first (see `_group_guard`)."""
    columns = {m.group(1) for m in _LITERAL_OR_COLUMN.finditer(predicate) if m.group(1)}
    if not columns <= set(_GROUP_KEYS):  # pragma: no cover - guards edits to the rules
        raise ValueError(f"{predicate!r} reads {sorted(columns - set(_GROUP_KEYS))}, which are no group keys")
    per_group = _LITERAL_OR_COLUMN.sub(lambda m: f"g.{m.group(1)}" if m.group(1) else m.group(0), predicate)
    return f"{_group_guard(per_group)} AND ({predicate})"


def _series_having(condition: str) -> str:
    """Rows of the batch's series whose series groups (`GROUPS` g), taken together, satisfy `condition`."""
    return f"""(s.tenant_id, s.series_id) IN (SELECT g.tenant_id, g.series_id FROM {_BATCH_GROUPS}
        GROUP BY g.tenant_id, g.series_id HAVING {condition})"""


def _minority(column: str, known: str) -> str:
    """Rows of a series with no stored row whose `column` differs from the series' majority in the batch.

    The majority is the value held by most of the series' rows (ties: the smaller value, so the choice
    is stable). Only values satisfying `known` (SQL over `g.<column>`) take part: unknown ones are another
    rule's. A series with stored rows is judged against its newest stored row instead (the *_unchanged
    rules), so the two families never both claim a row.
    """
    return f"""(s.tenant_id, s.series_id, s.{column}) IN (SELECT c.tenant_id, c.series_id, c.{column} FROM (
        SELECT g.tenant_id, g.series_id, g.{column}, row_number() OVER (PARTITION BY g.tenant_id, g.series_id
            ORDER BY sum(g.rows) DESC, g.{column}) AS rank
        FROM {_BATCH_GROUPS} AND g.stored_frequency IS NULL AND {known}
        GROUP BY g.tenant_id, g.series_id, g.{column}) c WHERE c.rank > 1)"""


def _against_stored(columns: tuple[str, ...], condition: str) -> str:
    """Rows whose (tenant, series, <columns>) group satisfies `condition` against the series' newest
    stored row (`GROUPS` columns stored_*; a series with no stored row never offends)."""
    s_cols = ", ".join(f"s.{c}" for c in columns)
    g_cols = ", ".join(f"g.{c}" for c in columns)
    return f"""(s.tenant_id, s.series_id, {s_cols}) IN (SELECT g.tenant_id, g.series_id, {g_cols}
        FROM {_BATCH_GROUPS} AND {condition})"""


_FREQUENCIES_SQL: Final = _sql_in_list(FREQUENCIES)
_EXPECTED_START: Final = _frequency_expr("s.frequency", lambda f: _period_start(f, "s.period"))
_EXPECTED_END: Final = _frequency_expr("s.frequency", lambda f: _period_end(f, "s.period"))
_FRESHNESS_ALLOWANCE: Final = _frequency_expr("g.frequency", lambda f: f"interval '{_allowance(f.freshness)}'")
_TEXT_COLUMNS: Final = (
    "tenant_id",
    "raw_period",
    "raw_value",
    "value_flag",
    "unit",
    "canonical_unit",
    "area",
    "sector",
    "seasonal_adjustment",
    "description",
    "dataset",
)
# Rows of series with a possible jump (`JUMPS`) whose |value| exceeds their series' bound. The first
# IN is over the few suspect series: when there are none it is FALSE at once and the second subquery,
# which reads the batch, is never run.
_VALUE_JUMPS: Final = f"""(s.tenant_id, s.series_id) IN (SELECT j.tenant_id, j.series_id FROM {JUMPS} j
        WHERE j.batch_id = {BATCH_PARAM})
    AND (s.tenant_id, s.series_id, s.period) IN (SELECT b.tenant_id, b.series_id, b.period
        FROM {STAGING} b JOIN {JUMPS} j ON j.tenant_id = b.tenant_id AND j.series_id = b.series_id
        WHERE b.ingest_batch_id = {BATCH_PARAM} AND j.batch_id = {BATCH_PARAM}
            AND {_finite("b.canonical_value")} AND abs(b.canonical_value) > j.jump_above)"""


def _required(column: str, kind: Kind = "completeness") -> Rule:
    predicate = _blank(f"s.{column}")
    return Rule(
        name=f"{column}_present",
        severity="fail",
        kind=kind,
        description=f"{column} is present (not NULL, not blank)",
        predicate=_by_group(predicate) if column in _GROUP_KEYS else predicate,
    )


def _required_timestamp(column: str) -> Rule:
    return Rule(
        name=f"{column}_present",
        severity="fail",
        kind="completeness",
        description=f"{column} is present (staging's NOT NULL constraint is the first line of defence)",
        predicate=f"s.{column} IS NULL",
    )


RULES: Final[tuple[Rule, ...]] = (
    # --- schema -----------------------------------------------------------------------------------
    Rule(
        name="schema_matches",
        severity="fail",
        kind="schema",
        description="staging has exactly the columns of observation.STAGED_COLUMNS, with their types",
        measure="schema_mismatches",
        scope="batch",
    ),
    # --- completeness -----------------------------------------------------------------------------
    _required("tenant_id"),
    _required("series_id"),
    _required_timestamp("period"),
    _required_timestamp("period_end"),
    _required("raw_period"),
    _required("frequency"),
    _required("source"),
    Rule(
        name="value_present_or_flagged",
        severity="fail",
        kind="completeness",
        description="a row without a number carries the token EIA sent instead (value_flag)",
        predicate="s.value IS NULL AND s.value_flag IS NULL",
    ),
    Rule(
        name="value_flag_known",
        severity="warn",
        kind="completeness",
        description="a row without a number carries a token EIA is known to use ('w', 'NA', '--', ...)",
        predicate=(
            f"s.value IS NULL AND s.value_flag IS NOT NULL AND s.value_flag NOT IN ({_sql_in_list(KNOWN_TOKENS)})"
        ),
    ),
    Rule(
        name="unit_present",
        severity="warn",
        kind="completeness",
        description="the row says which unit EIA reported",
        predicate=_by_group(_blank("s.unit")),
    ),
    # --- validity ---------------------------------------------------------------------------------
    Rule(
        name="frequency_known",
        severity="fail",
        kind="validity",
        description=f"frequency is one of {', '.join(FREQUENCIES)}",
        predicate=_by_group(f"s.frequency NOT IN ({_FREQUENCIES_SQL}) AND {_not_blank('s.frequency')}"),
    ),
    Rule(
        name="source_known",
        severity="fail",
        kind="validity",
        description=f"source is one of {', '.join(SOURCES)}",
        predicate=_by_group(f"s.source NOT IN ({_sql_in_list(SOURCES)}) AND {_not_blank('s.source')}"),
    ),
    Rule(
        name="period_aligned",
        severity="fail",
        kind="validity",
        description="period starts on its frequency's boundary in UTC (year, quarter, month, midnight, hour)",
        predicate=f"s.period <> {_EXPECTED_START}",
    ),
    Rule(
        name="period_end_after_period",
        severity="fail",
        kind="validity",
        description="period_end is after period (periods are half-open [period, period_end))",
        predicate="s.period_end <= s.period",
    ),
    Rule(
        name="period_end_matches_frequency",
        severity="fail",
        kind="validity",
        description="period_end = period + the frequency's length (in UTC)",
        predicate=f"s.period_end > s.period AND s.period_end <> {_EXPECTED_END}",
    ),
    Rule(
        name="period_not_in_future",
        severity="fail",
        kind="validity",
        description="period does not start later than now() + the frequency's tolerance "
        f"({_forecast_tolerances()}, which allows STEO forecasts)",
        # Every tolerance is positive, so only periods after now() can offend: one comparison for the rest.
        predicate="s.period > now() AND "
        + _frequency_expr("s.frequency", lambda f: f"s.period > now() + interval '{_allowance(f.future_tolerance)}'"),
    ),
    Rule(
        name="series_id_length",
        severity="fail",
        kind="validity",
        description=f"series_id is at most {MAX_SERIES_ID_LENGTH} characters",
        predicate=_longer_than(["s.series_id"], MAX_SERIES_ID_LENGTH),
    ),
    Rule(
        name="text_length",
        severity="fail",
        kind="validity",
        description=f"free-text columns are at most {MAX_TEXT_LENGTH} characters",
        predicate=_longer_than((f"s.{c}" for c in _TEXT_COLUMNS), MAX_TEXT_LENGTH),
    ),
    Rule(
        name="unknown_unit",
        severity="fail",
        kind="validity",
        description="the unit is in the unit table (units.csv): unit present but canonical_unit NULL",
        predicate=_by_group(f"s.canonical_unit IS NULL AND {_not_blank('s.unit')}"),
    ),
    Rule(
        name="canonical_unit_known",
        severity="fail",
        kind="validity",
        description="canonical_unit and canonical_currency are a pair the unit table defines",
        predicate=_by_group(_canonical_pair_unknown()),
    ),
    Rule(
        name="value_finite",
        severity="fail",
        kind="validity",
        description="value and canonical_value are finite numbers (no NaN or infinity)",
        # NaN sorts above Infinity, so a group's min and max show whether it holds a non-finite number.
        predicate=_group_guard(
            " OR ".join(
                f"g.max_{c} >= 'Infinity'::float8 OR g.min_{c} <= '-Infinity'::float8" for c in ("value", "canonical")
            )
        )
        + " AND ((s.value IS NOT NULL AND NOT "
        + _finite("s.value")
        + ") OR (s.canonical_value IS NOT NULL AND NOT "
        + _finite("s.canonical_value")
        + "))",
    ),
    Rule(
        name="canonical_value_consistent",
        severity="fail",
        kind="validity",
        description=(
            "for a known unit, canonical_value = value x conversion_factor within "
            f"{CANONICAL_RELATIVE_TOLERANCE:g} relative, and is NULL exactly when value is"
        ),
        predicate=(
            "s.canonical_unit IS NOT NULL AND ("
            "(s.value IS NULL) <> (s.canonical_value IS NULL) OR s.conversion_factor IS NULL OR ("
            f"{_finite('s.value')} AND {_finite('s.canonical_value')} AND "
            # Exact equality (the normal case: both sides are the same IEEE product) skips the tolerance test.
            "s.canonical_value <> s.value * s.conversion_factor AND "
            "abs(s.canonical_value - s.value * s.conversion_factor) > "
            f"{CANONICAL_RELATIVE_TOLERANCE!r} * abs(s.value * s.conversion_factor)))"
        ),
    ),
    Rule(
        name="value_in_plausible_range",
        severity="fail",
        kind="validity",
        description="canonical_value lies in its canonical unit's plausible range (unit table min/max)",
        predicate=_group_guard(_range_test("g.min_canonical", "g.max_canonical", "g.canonical_unit"))
        + f" AND {_finite('s.canonical_value')}"
        + f" AND ({_range_test('s.canonical_value', 's.canonical_value', 's.canonical_unit')})",
    ),
    # --- uniqueness -------------------------------------------------------------------------------
    Rule(
        name="unique_series_period",
        severity="fail",
        kind="uniqueness",
        description="one row per (tenant_id, series_id, period) in the batch",
        predicate=f"""(s.tenant_id, s.series_id, s.period) IN (SELECT d.tenant_id, d.series_id, d.period
        FROM {DUPLICATES} d WHERE d.batch_id = {BATCH_PARAM})""",
    ),
    # --- consistency ------------------------------------------------------------------------------
    Rule(
        name="series_single_frequency",
        severity="fail",
        kind="consistency",
        description="a new series' rows share one (known) frequency: rows off the batch's majority offend",
        predicate=_minority("frequency", f"g.frequency IN ({_FREQUENCIES_SQL})"),
    ),
    Rule(
        name="series_single_canonical_unit",
        severity="fail",
        kind="consistency",
        description="a new series' rows share one canonical unit: rows off the batch's majority offend",
        predicate=_minority("canonical_unit", "g.canonical_unit IS NOT NULL"),
    ),
    Rule(
        name="series_single_unit_text",
        severity="warn",
        kind="consistency",
        description="all rows of a series in the batch spell the unit the same way",
        predicate=_series_having(
            "min(g.unit) <> max(g.unit) AND min(g.canonical_unit) IS NOT DISTINCT FROM max(g.canonical_unit)"
        ),
    ),
    Rule(
        name="frequency_unchanged",
        severity="fail",
        kind="consistency",
        description="a series keeps the frequency of its newest stored row",
        predicate=_against_stored(
            ("frequency",), f"g.frequency <> g.stored_frequency AND g.frequency IN ({_FREQUENCIES_SQL})"
        ),
    ),
    Rule(
        name="canonical_unit_unchanged",
        severity="fail",
        kind="consistency",
        description="a series keeps the canonical unit of its newest stored row",
        predicate=_against_stored(("canonical_unit",), "g.canonical_unit <> g.stored_canonical_unit"),
    ),
    Rule(
        name="unit_text_unchanged",
        severity="warn",
        kind="consistency",
        description="a series keeps the unit text of its newest stored row (same canonical unit: drift)",
        predicate=_against_stored(
            ("unit", "canonical_unit"), "g.canonical_unit = g.stored_canonical_unit AND g.unit <> g.stored_unit"
        ),
    ),
    # --- volume -----------------------------------------------------------------------------------
    Rule(
        name="batch_not_empty",
        severity="fail",
        kind="volume",
        description="the batch has at least one row",
        threshold=1,
        measure="row_count_at_least",
        scope="batch",
    ),
    Rule(
        name="row_count_expected",
        severity="warn",
        kind="volume",
        description=f"the batch's row count lies in the range expected for the request "
        f"(variables {MIN_ROWS_VAR}..{MAX_ROWS_VAR})",
        measure="row_count_expected",
        scope="batch",
    ),
    # --- freshness --------------------------------------------------------------------------------
    Rule(
        name="series_fresh",
        severity="warn",
        kind="freshness",
        description="the newest period of each series is within its frequency's publication lag",
        predicate=_series_having(f"max(g.max_period_end) < now() - max({_FRESHNESS_ALLOWANCE})"),
    ),
    # --- anomaly ----------------------------------------------------------------------------------
    Rule(
        name="value_jump",
        severity="warn",
        kind="anomaly",
        description=(
            f"|value| is at most {ANOMALY_FACTOR:g}x the median |value| of the series "
            f"(batch plus newest {ANOMALY_HISTORY_ROWS} stored rows, canonical units)"
        ),
        predicate=_VALUE_JUMPS,
    ),
)

_BY_NAME: Final[Mapping[str, Rule]] = MappingProxyType({r.name: r for r in RULES})
if len(_BY_NAME) != len(RULES):  # pragma: no cover - guards edits to RULES
    raise RuntimeError("rule names must be unique")


def rule(name: str) -> Rule:
    """The rule called `name`; KeyError names the unknown rule."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no quality rule named {name!r}") from None
