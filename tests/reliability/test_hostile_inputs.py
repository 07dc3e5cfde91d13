"""Hostile input on the API path: each one ends in a clear error or in quarantine with a reason; nothing
is lost and nothing crashes. (Bulk-file hostile input, such as invalid UTF-8 or over-long lines, is
covered with the bulk flow.)

One series run fetches every hostile entry side by side, as a real catalog would; each test below
checks one of them.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from prefect.blocks.system import Secret
from pydantic import SecretStr

from blocks import API_KEY_BLOCK
from flows.cli.setup import ensure_limits
from flows.series import SeriesRunResult
from tasks.eia.responses import MAX_JSON_DEPTH
from tasks.normalize.observation import MAX_TEXT_LENGTH
from tasks.standin.data import DATE_FORMATS, SAMPLES_DIR, ReplayDataset, synthetic_route_series
from tasks.standin.server import EiaReplayServer, FaultPlan
from tests.flows.conftest import API_KEY, Setup
from tests.reliability.support import no_duplicates, runs_reconcile
from tests.reliability.test_eia_faults import run
from tests.support.services import reset_database

pytestmark = pytest.mark.slow

SQL_FACET = "'; DROP TABLE eia_series_timeseries; --"
UNICODE_FACET = 'Zürich "quoted"'
HOSTILE_SERIES_ID = 'INTL.Zürich "q"\'; DROP TABLE eia_series_timeseries; --.A'
NONFINITE_SERIES_ID = "INTL.NONFINITE-HKG-BKWH.A"
BODY_CAP = 48_000
GAS = "natural-gas/pri/fut"
RETAIL = "electricity/retail-sales"
NUMBER_TOKENS = ["1.5e1", "2E-1", "NaN", "Infinity", "-Infinity", "1e999", "0.5e+1", "+7"]


def _route_entry(ident: str, route: str, frequency: str, column: str, facets: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "id": ident,
        "route": route,
        "frequency": frequency,
        "data": [column],
        "facets": facets,
        "series_facets": sorted(facets),
        "area_facet": sorted(facets)[0],
    }


def _gas_rows(series: str, n: int, start: str = "2026-09-01") -> list[dict[str, Any]]:
    return synthetic_route_series(
        GAS,
        "daily",
        n_points=n,
        facets={"series": series},
        unit="$/MMBTU",
        unit_column="units",
        start=start,
        value_fn=lambda i: f"{3 + i % 7 / 10:.2f}",
    )


def _retail_rows(sector: str, values: list[str]) -> list[dict[str, Any]]:
    return synthetic_route_series(
        RETAIL,
        "monthly",
        n_points=len(values),
        facets={"stateid": "US", "sectorid": sector},
        column="price",
        unit="cents per kilowatt-hour",
        start="2025-01",
        value_fn=lambda i: values[i],
    )


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


def _seriesid_body(values: list[Any]) -> dict[str, Any]:
    sample = json.loads((SAMPLES_DIR / "myeia_seriesid_INTL.29-12-HKG-BKWH.A.json").read_text(encoding="utf-8"))
    template = sample["response"]["data"][1]
    body: dict[str, Any] = copy.deepcopy(sample)
    body["response"]["data"] = [dict(template, period=2023 - i, value=v) for i, v in enumerate(values)]
    body["response"]["total"] = len(values)
    return body


def hostile_dataset() -> tuple[ReplayDataset, list[dict[str, Any]], list[str]]:
    data = ReplayDataset(routes={}, seriesid={})
    entries: list[dict[str, Any]] = []

    data.add_route_rows(RETAIL, "monthly", DATE_FORMATS["monthly"], _retail_rows("NUM", NUMBER_TOKENS))
    entries.append(_route_entry("numbers", RETAIL, "monthly", "price", {"stateid": ["US"], "sectorid": ["NUM"]}))

    long_unit = _retail_rows("UNIT", ["6.1", "6.2", "6.3"])
    long_unit[1]["price-units"] = "kilowatt-hour " * 715  # 10,010 characters
    data.add_route_rows(RETAIL, "monthly", DATE_FORMATS["monthly"], long_unit)
    entries.append(_route_entry("long-unit", RETAIL, "monthly", "price", {"stateid": ["US"], "sectorid": ["UNIT"]}))

    impossible = _gas_rows("PERIOD", 5)
    impossible.append(dict(impossible[0], period="2023-02-30"))
    for ident, series, rows in (
        ("impossible-period", "PERIOD", impossible),
        ("sql-metacharacters", SQL_FACET, _gas_rows(SQL_FACET, 5)),
        ("unicode-quotes", UNICODE_FACET, _gas_rows(UNICODE_FACET, 5)),
        ("over-cap", "BIG", _gas_rows("BIG", 1000, start="2023-12-01")),
    ):
        data.add_route_rows(GAS, "daily", DATE_FORMATS["daily"], rows)
        entries.append(_route_entry(ident, GAS, "daily", "value", {"series": [series]}))
    nested = _gas_rows("NEST", 3)
    nested[1]["series-description"] = _nested(MAX_JSON_DEPTH * 6)
    data.add_route_rows(GAS, "daily", DATE_FORMATS["daily"], nested)
    entries.append(_route_entry("deeply-nested", GAS, "daily", "value", {"series": ["NEST"]}))

    data.add_seriesid(NONFINITE_SERIES_ID, _seriesid_body([0.25, math.nan, math.inf, -math.inf, 0.5]))
    data.add_seriesid(HOSTILE_SERIES_ID, _seriesid_body([0.1, 0.2, 0.3]))
    return data, entries, [NONFINITE_SERIES_ID, HOSTILE_SERIES_ID]


@dataclass(frozen=True)
class HostileRun:
    dsn: str
    state_failed: bool
    state_crashed: bool
    message: str
    result: SeriesRunResult

    def entry(self, key: str) -> Any:
        return next(e for e in self.result.entries if e.key == key)

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
async def hostile(
    prefect_server: None, pg_dsn: str, eia_server: EiaReplayServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[HostileRun]:
    reset_database(pg_dsn)
    dataset, entries, series_ids = hostile_dataset()
    eia_server.dataset, eia_server.faults = dataset, FaultPlan()
    eia_server.stats.reset()
    await Secret(value=SecretStr(API_KEY)).save(API_KEY_BLOCK, overwrite=True)
    await ensure_limits(slots=3, rate=1000.0, burst=50)
    s = Setup(pg_dsn, eia_server, tmp_path_factory.mktemp("hostile"))
    await s.configure(retries=0, max_body_bytes=BODY_CAP, breaker_fail_max=100)
    state, result = await run(s.catalog(entries, series_ids))
    yield HostileRun(pg_dsn, state.is_failed(), state.is_crashed(), state.message or "", result)
    await s.configure()


def test_the_run_reports_the_two_unreadable_responses_and_loads_everything_else(hostile: HostileRun) -> None:
    assert hostile.state_failed and not hostile.state_crashed
    assert "deeply-nested:" in hostile.message and "over-cap:" in hostile.message
    assert sorted(e.key for e in hostile.result.entries if e.error) == ["deeply-nested", "over-cap"]
    assert [e.key for e in hostile.result.entries if e.failed_checks] == []  # no batch blocked by the gate
    for e in hostile.result.entries:
        assert e.counts.reconciles
    runs_reconcile(hostile.dsn)
    no_duplicates(hostile.dsn)
    assert hostile.rows("SELECT count(*) FROM eia_series_staging") == [(0,)]


def test_deeply_nested_json_is_refused_with_a_clear_error_and_nothing_is_stored(hostile: HostileRun) -> None:
    nested = hostile.entry("deeply-nested")
    assert nested.error is not None and f"nested deeper than {MAX_JSON_DEPTH} levels" in nested.error
    assert hostile.rows("SELECT count(*) FROM eia_series_timeseries WHERE series_id LIKE '%%NEST%%'") == [(0,)]


def test_a_body_over_the_size_cap_is_refused_with_a_clear_error(hostile: HostileRun) -> None:
    big = hostile.entry("over-cap")
    assert big.error is not None and f"exceeds the {BODY_CAP}-byte cap" in big.error
    assert hostile.rows("SELECT count(*) FROM eia_series_timeseries WHERE series_id LIKE '%%BIG%%'") == [(0,)]


def test_numbers_with_exponents_parse_and_nan_and_infinity_are_kept_as_flagged_tokens(hostile: HostileRun) -> None:
    rows = dict(
        (raw, (value, flag))
        for raw, value, flag in hostile.rows(
            "SELECT raw_value, value, value_flag FROM eia_series_timeseries WHERE series_id LIKE '%%sectorid=NUM%%'"
        )
    )
    assert len(rows) == len(NUMBER_TOKENS) == hostile.entry("numbers").counts.inserted
    assert rows["1.5e1"] == (15.0, None) and rows["2E-1"] == (0.2, None)
    assert rows["0.5e+1"] == (5.0, None) and rows["+7"] == (7.0, None)
    for token in ("NaN", "Infinity", "-Infinity", "1e999"):  # never a number, never lost
        assert rows[token] == (None, token)


def test_json_nan_and_infinity_from_seriesid_are_kept_as_flagged_tokens(hostile: HostileRun) -> None:
    rows = hostile.rows(
        "SELECT raw_period, value, raw_value, value_flag FROM eia_series_timeseries WHERE series_id = %s "
        "ORDER BY raw_period DESC",
        NONFINITE_SERIES_ID,
    )
    assert rows == [
        ("2023", 0.25, "0.25", None),
        ("2022", None, "NaN", "NaN"),
        ("2021", None, "Infinity", "Infinity"),
        ("2020", None, "-Infinity", "-Infinity"),
        ("2019", 0.5, "0.5", None),
    ]


def test_an_impossible_date_is_quarantined_with_its_reason(hostile: HostileRun) -> None:
    report = hostile.entry("impossible-period")
    assert (report.counts.inserted, report.counts.quarantined) == (5, 1)
    ((reason, detail),) = hostile.rows(
        "SELECT reason, detail FROM eia_series_quarantine WHERE raw_period = '2023-02-30'"
    )
    assert reason == "bad_period" and "not a calendar date" in detail


def test_sql_metacharacters_quotes_and_unicode_are_stored_verbatim_and_the_table_is_intact(
    hostile: HostileRun,
) -> None:
    assert hostile.rows("SELECT to_regclass('eia_series_timeseries') IS NOT NULL") == [(True,)]
    stored = {
        row[0]: row[1]
        for row in hostile.rows(
            "SELECT metadata->'facets'->>'series', count(*) FROM eia_series_timeseries "
            "WHERE metadata->'facets'->>'series' IN (%s, %s) GROUP BY 1",
            SQL_FACET,
            UNICODE_FACET,
        )
    }
    assert stored == {SQL_FACET: 5, UNICODE_FACET: 5}
    assert hostile.rows(
        "SELECT count(*) FROM eia_series_metadata WHERE facets->>'series' IN (%s, %s)", SQL_FACET, UNICODE_FACET
    ) == [(2,)]
    by_id = hostile.rows("SELECT count(*) FROM eia_series_timeseries WHERE series_id = %s", HOSTILE_SERIES_ID)
    assert by_id == [(3,)]


def test_a_ten_kilobyte_unit_is_quarantined_as_field_too_long(hostile: HostileRun) -> None:
    report = hostile.entry("long-unit")
    assert (report.counts.inserted, report.counts.quarantined) == (2, 1)
    ((reason, detail),) = hostile.rows(
        "SELECT reason, detail FROM eia_series_quarantine WHERE series_id LIKE '%%sectorid=UNIT%%'"
    )
    assert reason == "field_too_long" and str(MAX_TEXT_LENGTH) in detail
    assert hostile.rows(
        "SELECT max(length(unit)) FROM eia_series_timeseries WHERE series_id LIKE '%%sectorid=UNIT%%'"
    ) == [(len("cents per kilowatt-hour"),)]


def test_nothing_received_is_lost(hostile: HostileRun) -> None:
    counts = hostile.result.counts
    table = hostile.rows("SELECT count(*) FROM eia_series_timeseries")[0][0]
    quarantined = hostile.rows("SELECT count(*) FROM eia_series_quarantine")[0][0]
    # The two refused responses were never received: their rows are still at EIA for the next run.
    assert counts.received == table + quarantined == counts.inserted + counts.quarantined
