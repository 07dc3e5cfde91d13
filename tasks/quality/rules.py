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
* Rules that look at other rows (of the batch, or of `eia_series_timeseries`) use *uncorrelated*
  subqueries restricted to the batch by the bind parameter `%(batch)s` (`BATCH_PARAM`), e.g.
  `(s.tenant_id, s.series_id) IN (SELECT ... WHERE b.ingest_batch_id = %(batch)s ...)`. Each such
  subquery runs once per check (a hashed sub-plan), never once per row, so every check is
  set-based SQL (the gate's session settings in `contract.GATE_SESSION_OPTIONS` keep it that way
  when staging has no statistics yet). Predicates never contain `%` otherwise.
* Rules are orthogonal where they can be: a planted defect trips its own fail-level rule and no
  other (consistency rules ignore unknown frequencies and units, value rules ignore non-finite
  numbers, `period_end_matches_frequency` ignores ends before the start, ...). The tests check it.
* `threshold` is the number of offending rows a row rule allows (a count, not a fraction); every
  rule here allows 0. Rules without a row predicate say what they measure in `measure`.
* Parameters come from one place each: units (canonical units, currencies, plausible ranges) from
  the unit table `tasks/normalize/units.csv`; frequencies from `observation.FREQUENCIES` with the
  per-frequency policy below; value tokens from `values.KNOWN_TOKENS`. SQL lists and CASE
  expressions are generated from them when this module is imported; no copy of the data is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from tasks.normalize.observation import (
    FREQUENCIES,
    MAX_SERIES_ID_LENGTH,
    MAX_TEXT_LENGTH,
    SOURCE_API,
    SOURCE_BULK,
)
from tasks.normalize.units import unit_table
from tasks.normalize.values import KNOWN_TOKENS
from tasks.store.tables import STAGING, TIMESERIES

Severity = Literal["fail", "warn"]
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


@dataclass(frozen=True, slots=True)
class FrequencyPolicy:
    """What a frequency means to the rules (SQL interval literals)."""

    length: str  # period_end = period + length, in UTC
    future_tolerance: str  # how far past now() a period may start
    freshness: str  # how old the newest period_end of a series may be before `series_fresh` warns

    @property
    def calendar(self) -> bool:
        """True for month-based lengths, which need UTC calendar arithmetic (not a fixed stride)."""
        return any(unit in self.length for unit in ("month", "year"))


# Future tolerance: sub-daily data is near real time, so a period days ahead is a parse error. EIA's
# Short-Term Energy Outlook (STEO) publishes monthly, quarterly and annual *forecasts* about two years
# ahead, so those frequencies allow three years. Freshness: EIA's publication lags (hourly EIA-930
# within a day; monthly surveys 2-4 months; international and SEDS annual data about two years) plus
# headroom; only a warning, because backfills of old periods are legitimate.
FREQUENCY_POLICY: Final[Mapping[str, FrequencyPolicy]] = MappingProxyType(
    {
        "annual": FrequencyPolicy("1 year", "3 years", "3 years"),
        "quarterly": FrequencyPolicy("3 months", "3 years", "15 months"),
        "monthly": FrequencyPolicy("1 month", "3 years", "1 year"),
        # Fixed strides are written in hours: "1 day" would follow the session's DST rules.
        "weekly": FrequencyPolicy("168 hours", "14 days", "35 days"),
        "daily": FrequencyPolicy("24 hours", "7 days", "21 days"),
        "hourly": FrequencyPolicy("1 hour", "2 days", "7 days"),
        "local-hourly": FrequencyPolicy("1 hour", "2 days", "7 days"),
    }
)
if set(FREQUENCY_POLICY) != set(FREQUENCIES):  # pragma: no cover - guards edits to FREQUENCIES
    raise RuntimeError("FREQUENCY_POLICY must cover exactly observation.FREQUENCIES")

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


# --- SQL building helpers (all literals come from trusted constants, quoted here) -------------------


def sql_literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _sql_number(number: float) -> str:
    return repr(float(number)) if not float(number).is_integer() else str(int(number))


def _sql_in_list(values: Iterable[str]) -> str:
    return ", ".join(sql_literal(v) for v in sorted(values))


def _frequency_expr(frequency: str, expression: Callable[[FrequencyPolicy], str]) -> str:
    """CASE <frequency column> WHEN '<frequency>' THEN <expression(policy)> ... END (NULL if unknown)."""
    whens = " ".join(f"WHEN {sql_literal(f)} THEN {expression(p)}" for f, p in FREQUENCY_POLICY.items())
    return f"CASE {frequency} {whens} END"


_UTC_EPOCH: Final = "timestamptz '2000-01-03 00:00:00+00'"  # a Monday; any midnight UTC works


def _period_start(policy: FrequencyPolicy, column: str) -> str:
    """The start of the period containing `column`, in UTC, for a frequency with this policy.

    Fixed strides use date_bin from a UTC midnight (cheap, independent of the session time zone);
    calendar lengths truncate the UTC wall clock. Weekly periods only need to start at midnight:
    EIA's weeks end on different weekdays depending on the survey.
    """
    if policy.calendar:
        field = {"1 year": "year", "3 months": "quarter", "1 month": "month"}[policy.length]
        return f"date_trunc('{field}', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    stride = "1 hour" if policy.length == "1 hour" else "24 hours"
    return f"date_bin(interval '{stride}', {column}, {_UTC_EPOCH})"


def _period_end(policy: FrequencyPolicy, column: str) -> str:
    if policy.calendar:
        return f"({column} AT TIME ZONE 'UTC' + interval '{policy.length}') AT TIME ZONE 'UTC'"
    return f"{column} + interval '{policy.length}'"


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


def _range_predicate() -> str:
    whens, lows, highs = [], [], []
    for canonical, (low, high) in sorted(_canonical_ranges().items()):
        tests = []
        if low is not None:
            tests.append(f"s.canonical_value < {_sql_number(low)}")
            lows.append(low)
        if high is not None:
            tests.append(f"s.canonical_value > {_sql_number(high)}")
            highs.append(high)
        if tests:
            whens.append(f"WHEN {sql_literal(canonical)} THEN {' OR '.join(tests)}")
    if not whens:
        return "FALSE"
    # Prefilter: a value inside every unit's range cannot offend, so most rows skip the CASE.
    outside = [f"s.canonical_value < {_sql_number(max(lows))}"] if lows else []
    outside += [f"s.canonical_value > {_sql_number(min(highs))}"] if highs else []
    return (
        f"({' OR '.join(outside)}) AND {_finite('s.canonical_value')} AND (CASE s.canonical_unit {' '.join(whens)} END)"
    )


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


def _series_having(condition: str) -> str:
    """Rows of the batch's series whose batch rows, grouped per series, satisfy `condition`."""
    return f"""(s.tenant_id, s.series_id) IN (SELECT b.tenant_id, b.series_id FROM {_BATCH_ROWS}
        GROUP BY b.tenant_id, b.series_id HAVING {condition})"""


def _against_stored(columns: tuple[str, ...], condition: str) -> str:
    """Rows whose (tenant, series, <columns>) group differs from the series' newest stored row.

    The batch is grouped first, so the newest stored row is looked up once per group (an index
    probe), not once per row; `condition` compares group `g` with stored row `l`.
    """
    s_cols = ", ".join(f"s.{c}" for c in columns)
    g_cols = ", ".join(f"g.{c}" for c in columns)
    b_cols = ", ".join(f"b.{c}" for c in columns)
    return f"""(s.tenant_id, s.series_id, {s_cols}) IN (SELECT g.tenant_id, g.series_id, {g_cols}
        FROM (SELECT b.tenant_id, b.series_id, {b_cols} FROM {_BATCH_ROWS}
            GROUP BY b.tenant_id, b.series_id, {b_cols}) g
        CROSS JOIN LATERAL (SELECT t.unit, t.canonical_unit, t.frequency FROM {TIMESERIES} t
            WHERE t.tenant_id = g.tenant_id AND t.series_id = g.series_id
            ORDER BY t.period DESC LIMIT 1) l
        WHERE {condition})"""


_FREQUENCIES_SQL: Final = _sql_in_list(FREQUENCIES)
_EXPECTED_START: Final = _frequency_expr("s.frequency", lambda p: _period_start(p, "s.period"))
_EXPECTED_END: Final = _frequency_expr("s.frequency", lambda p: _period_end(p, "s.period"))
_FRESHNESS_ALLOWANCE: Final = _frequency_expr("b.frequency", lambda p: f"interval '{p.freshness}'")
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
# One scan of the batch: each series' values and periods as arrays, then per series (LATERAL) the
# median over those values plus the newest stored ones, and the rows above the factor.
_VALUE_JUMPS: Final = f"""(s.tenant_id, s.series_id, s.period) IN (SELECT g.tenant_id, g.series_id, r.period
        FROM (SELECT b.tenant_id, b.series_id, array_agg(b.period) AS periods, array_agg(b.canonical_value) AS xs
            FROM {_BATCH_ROWS} AND {_finite("b.canonical_value")}
            GROUP BY b.tenant_id, b.series_id) g
        CROSS JOIN LATERAL (SELECT count(*) AS n,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(v.x)) AS median_abs
            FROM (SELECT unnest(g.xs) AS x
                UNION ALL
                (SELECT t.canonical_value FROM {TIMESERIES} t
                    WHERE t.tenant_id = g.tenant_id AND t.series_id = g.series_id
                        AND {_finite("t.canonical_value")}
                    ORDER BY t.period DESC LIMIT {ANOMALY_HISTORY_ROWS})) v) m
        CROSS JOIN LATERAL unnest(g.periods, g.xs) AS r(period, x)
        WHERE m.n >= {ANOMALY_MIN_POINTS} AND m.median_abs > 0
            AND abs(r.x) > {_sql_number(ANOMALY_FACTOR)} * m.median_abs)"""


def _required(column: str, kind: Kind = "completeness") -> Rule:
    return Rule(
        name=f"{column}_present",
        severity="fail",
        kind=kind,
        description=f"{column} is present (not NULL, not blank)",
        predicate=_blank(f"s.{column}"),
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
        predicate=_blank("s.unit"),
    ),
    # --- validity ---------------------------------------------------------------------------------
    Rule(
        name="frequency_known",
        severity="fail",
        kind="validity",
        description=f"frequency is one of {', '.join(FREQUENCIES)}",
        predicate=f"s.frequency NOT IN ({_FREQUENCIES_SQL}) AND {_not_blank('s.frequency')}",
    ),
    Rule(
        name="source_known",
        severity="fail",
        kind="validity",
        description=f"source is one of {', '.join(SOURCES)}",
        predicate=f"s.source NOT IN ({_sql_in_list(SOURCES)}) AND {_not_blank('s.source')}",
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
        "(3 years for monthly/quarterly/annual, which allows STEO forecasts)",
        predicate=_frequency_expr("s.frequency", lambda p: f"s.period > now() + interval '{p.future_tolerance}'"),
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
        predicate=f"s.canonical_unit IS NULL AND {_not_blank('s.unit')}",
    ),
    Rule(
        name="canonical_unit_known",
        severity="fail",
        kind="validity",
        description="canonical_unit and canonical_currency are a pair the unit table defines",
        predicate=_canonical_pair_unknown(),
    ),
    Rule(
        name="value_finite",
        severity="fail",
        kind="validity",
        description="value and canonical_value are finite numbers (no NaN or infinity)",
        predicate=(
            "(s.value IS NOT NULL AND NOT " + _finite("s.value") + ") OR "
            "(s.canonical_value IS NOT NULL AND NOT " + _finite("s.canonical_value") + ")"
        ),
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
            "abs(s.canonical_value - s.value * s.conversion_factor) > "
            f"{CANONICAL_RELATIVE_TOLERANCE!r} * abs(s.value * s.conversion_factor)))"
        ),
    ),
    Rule(
        name="value_in_plausible_range",
        severity="fail",
        kind="validity",
        description="canonical_value lies in its canonical unit's plausible range (unit table min/max)",
        predicate=_range_predicate(),
    ),
    # --- uniqueness -------------------------------------------------------------------------------
    Rule(
        name="unique_series_period",
        severity="fail",
        kind="uniqueness",
        description="one row per (tenant_id, series_id, period) in the batch",
        predicate=f"""(s.tenant_id, s.series_id, s.period) IN (SELECT b.tenant_id, b.series_id, b.period
        FROM {_BATCH_ROWS} GROUP BY b.tenant_id, b.series_id, b.period HAVING count(*) > 1)""",
    ),
    # --- consistency ------------------------------------------------------------------------------
    Rule(
        name="series_single_frequency",
        severity="fail",
        kind="consistency",
        description="all rows of a series in the batch have one (known) frequency",
        predicate=_series_having(
            f"min(b.frequency) FILTER (WHERE b.frequency IN ({_FREQUENCIES_SQL})) "
            f"<> max(b.frequency) FILTER (WHERE b.frequency IN ({_FREQUENCIES_SQL}))"
        ),
    ),
    Rule(
        name="series_single_canonical_unit",
        severity="fail",
        kind="consistency",
        description="all rows of a series in the batch have one canonical unit",
        predicate=_series_having("min(b.canonical_unit) <> max(b.canonical_unit)"),
    ),
    Rule(
        name="series_single_unit_text",
        severity="warn",
        kind="consistency",
        description="all rows of a series in the batch spell the unit the same way",
        predicate=_series_having(
            "min(b.unit) <> max(b.unit) AND min(b.canonical_unit) IS NOT DISTINCT FROM max(b.canonical_unit)"
        ),
    ),
    Rule(
        name="frequency_unchanged",
        severity="fail",
        kind="consistency",
        description="a series keeps the frequency of its newest stored row",
        predicate=_against_stored(
            ("frequency",), f"g.frequency <> l.frequency AND g.frequency IN ({_FREQUENCIES_SQL})"
        ),
    ),
    Rule(
        name="canonical_unit_unchanged",
        severity="fail",
        kind="consistency",
        description="a series keeps the canonical unit of its newest stored row",
        predicate=_against_stored(("canonical_unit",), "g.canonical_unit <> l.canonical_unit"),
    ),
    Rule(
        name="unit_text_unchanged",
        severity="warn",
        kind="consistency",
        description="a series keeps the unit text of its newest stored row (same canonical unit: drift)",
        predicate=_against_stored(
            ("unit", "canonical_unit"), "g.canonical_unit = l.canonical_unit AND g.unit <> l.unit"
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
    ),
    Rule(
        name="row_count_expected",
        severity="warn",
        kind="volume",
        description=f"the batch's row count lies in the range expected for the request "
        f"(variables {MIN_ROWS_VAR}..{MAX_ROWS_VAR})",
        measure="row_count_expected",
    ),
    # --- freshness --------------------------------------------------------------------------------
    Rule(
        name="series_fresh",
        severity="warn",
        kind="freshness",
        description="the newest period of each series is within its frequency's publication lag",
        predicate=_series_having(f"max(b.period_end) < now() - max({_FRESHNESS_ALLOWANCE})"),
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
