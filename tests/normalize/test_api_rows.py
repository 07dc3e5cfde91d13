"""API v2 rows (route /data rows and /v2/seriesid rows) become observations or reasoned rejections."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tasks.core.catalog import CatalogEntry
from tasks.normalize.api_rows import normalize_route_rows, normalize_seriesid_rows
from tasks.normalize.observation import MAX_TEXT_LENGTH, SOURCE_API, NormalizeResult
from tests.normalize import response_rows, utc

RETAIL_SALES = CatalogEntry(
    id="retail-sales-us",
    route="electricity/retail-sales",
    frequency="monthly",
    data=("price",),
    facets={"stateid": ("US",), "sectorid": ("ALL",)},
    series_facets=("stateid", "sectorid"),
    area_facet="stateid",
    sector_facet="sectorid",
)
FUEL_TYPE = CatalogEntry(
    id="fuel-type-us48",
    route="electricity/rto/fuel-type-data",
    frequency="hourly",
    data=("value",),
    facets={"respondent": ("US48",)},
    series_facets=("respondent", "fueltype"),
    area_facet="respondent",
)
REGION_DATA = CatalogEntry(
    id="region-data-aec",
    route="electricity/rto/region-data",
    frequency="hourly",
    data=("value",),
    facets={"respondent": ("AEC",), "type": ("D",)},
    series_facets=("respondent", "type"),
    area_facet="respondent",
)
HENRY_HUB = CatalogEntry(
    id="henry-hub-daily",
    route="natural-gas/pri/fut",
    frequency="daily",
    data=("value",),
    facets={"series": ("RNGWHHD",)},
    series_facets=("series",),
    area_facet="duoarea",
)
NG_PRICES = CatalogEntry(
    id="ng-residential-price",
    route="natural-gas/pri/sum",
    frequency="monthly",
    data=("value",),
    facets={
        "duoarea": ("NUS-Z00", "NUS"),
        "product": ("EPG0",),
        "process": ("PRS",),
        "series": ("N3010US3",),
    },
    series_facets=("series",),
    area_facet="duoarea",
)
COAL_PRICES = CatalogEntry(
    id="coal-market-sales-price",
    route="coal/market-sales-price",
    frequency="annual",
    data=("price", "sales"),
    facets={"stateRegionId": ("AK",), "marketTypeId": ("OM",)},
    series_facets=("stateRegionId", "marketTypeId"),
    area_facet="stateRegionId",
)
FACILITY_FUEL = CatalogEntry(
    id="facility-fuel-plant-2",
    route="electricity/facility-fuel",
    frequency="monthly",
    data=(
        "average-heat-content",
        "consumption-for-eg",
        "consumption-for-eg-btu",
        "generation",
        "gross-generation",
        "total-consumption",
        "total-consumption-btu",
    ),
    facets={
        "plantCode": ("2",),
        "fuel2002": ("ALL",),
        "fuelType": ("ALL",),
        "state": ("AL",),
        "primeMover": ("ALL",),
    },
    series_facets=("plantCode", "fuel2002", "primeMover"),
    area_facet="state",
)
OPERATIONAL = CatalogEntry(
    id="generation-us",
    route="electricity/electric-power-operational-data",
    frequency="monthly",
    data=("generation",),
    facets={"location": ("US",), "sectorid": ("99",), "fueltypeid": ("ALL",)},
    series_facets=("location", "sectorid", "fueltypeid"),
    area_facet="location",
    sector_facet="sectorid",
)
PIPELINE = CatalogEntry(
    id="pipeline-padd2-padd1",
    route="petroleum/move/pipe",
    frequency="monthly",
    data=("value",),
    facets={"series": ("MD0MP_R10-R20_1",)},
    series_facets=("series",),
    area_facet="duoarea",
)
STEO = CatalogEntry(
    id="steo-opec-disruptions",
    route="steo",
    frequency="monthly",
    data=("value",),
    facets={"seriesId": ("PADI_OPEC",)},
    series_facets=("seriesId",),
)

SAMPLE_ROUTES = [
    ("fc_v2_retail_sales_first_rows_warning.json", RETAIL_SALES),
    ("fc_v2_rto_fuel_type_hourly_first_rows.json", FUEL_TYPE),
    ("openbb_body_rto_region_data_hourly.json", REGION_DATA),
    ("fc_v2_ng_pri_fut_henry_hub_daily_2026-09.json", HENRY_HUB),
    ("openbb_body_ng_pri_sum_null_value.json", NG_PRICES),
    ("openbb_body_coal_market_sales_price.json", COAL_PRICES),
    ("openbb_body_facility_fuel.json", FACILITY_FUEL),
    ("fc_v2_electric_power_operational_data_first_row.json", OPERATIONAL),
    ("myeia_route_petroleum_move_pipe_MD0MP_R10-R20_1_monthly.json", PIPELINE),
    ("myeia_route_steo_PADI_OPEC_monthly.json", STEO),
]
INTL = "myeia_seriesid_INTL.29-12-HKG-BKWH.A.json"
STEO_SERIES = "myeia_seriesid_STEO.PATC_WORLD.M.json"


def reasons(result: NormalizeResult) -> list[str]:
    return [r.reason for r in result.rejections]


@pytest.mark.parametrize(("name", "entry"), SAMPLE_ROUTES, ids=[n for n, _ in SAMPLE_ROUTES])
def test_every_sample_row_and_column_becomes_an_observation(name: str, entry: CatalogEntry) -> None:
    rows = response_rows(name)
    result = normalize_route_rows(rows, entry)
    assert result.rejections == []
    assert len(result.observations) == len(rows) * len(entry.data)
    assert {o.source for o in result.observations} == {SOURCE_API}
    assert {o.dataset for o in result.observations} == {entry.route}


def test_retail_sales_price_rows_in_full() -> None:
    result = normalize_route_rows(response_rows("fc_v2_retail_sales_first_rows_warning.json"), RETAIL_SALES)
    first, second = result.observations
    assert first.series_id == second.series_id == "EIA2:electricity/retail-sales:price:M:sectorid=ALL;stateid=US"
    assert (first.period, first.period_end, first.raw_period) == (utc(2001, 1, 1), utc(2001, 2, 1), "2001-01")
    assert (first.frequency, first.value, first.raw_value, first.value_flag) == (
        "monthly",
        6.75,
        "6.75",
        None,
    )
    assert (first.unit, first.canonical_unit, first.canonical_currency) == (
        "cents per kilowatt-hour",
        "USD/kWh",
        "USD",
    )
    assert first.conversion_factor == 0.01
    assert first.canonical_value == pytest.approx(0.0675)
    assert (first.area, first.sector, first.seasonal_adjustment, first.description) == (
        "US",
        "ALL",
        None,
        None,
    )
    assert first.metadata == {
        "route": "electricity/retail-sales",
        "facets": {"stateid": "US", "sectorid": "ALL"},
        "column": "price",
    }
    assert second.raw_period == "2001-02"
    assert second.value == 6.87


def test_a_withheld_coal_price_keeps_its_w_token_and_carries_no_number() -> None:
    result = normalize_route_rows(response_rows("openbb_body_coal_market_sales_price.json"), COAL_PRICES)
    by_column = {o.metadata["column"]: o for o in result.observations if o.metadata}
    price, sales = by_column["price"], by_column["sales"]
    assert (price.value, price.raw_value, price.value_flag, price.canonical_value) == (None, "w", "w", None)
    assert (sales.value, sales.raw_value, sales.value_flag, sales.canonical_value) == (None, "w", "w", None)
    assert (price.unit, price.canonical_unit) == ("dollars per short ton", "USD/short ton")
    assert (sales.unit, sales.canonical_unit) == ("short tons", "short ton")
    assert price.series_id == "EIA2:coal/market-sales-price:price:A:marketTypeId=OM;stateRegionId=AK"
    assert price.period == utc(2001, 1, 1)


def test_null_values_with_null_units_are_kept_as_null_observations() -> None:
    result = normalize_route_rows(response_rows("openbb_body_facility_fuel.json"), FACILITY_FUEL)
    by_column = {o.metadata["column"]: o for o in result.observations if o.metadata}
    heat = by_column["average-heat-content"]
    assert (heat.value, heat.raw_value, heat.value_flag, heat.unit, heat.canonical_unit) == (
        None,
        None,
        "null",
        None,
        None,
    )
    btu = by_column["consumption-for-eg-btu"]
    assert (btu.value, btu.unit, btu.canonical_unit, btu.canonical_value) == (
        195479.69,
        "MMBtu",
        "MMBtu",
        195479.69,
    )
    assert by_column["generation"].canonical_unit == "MWh"
    assert heat.area == "AL"
    assert heat.series_id == (
        "EIA2:electricity/facility-fuel:average-heat-content:M:fuel2002=ALL;plantCode=2;primeMover=ALL"
    )
    assert heat.metadata is not None
    assert heat.metadata["facets"] == {
        "plantCode": "2",
        "fuel2002": "ALL",
        "fuelType": "ALL",
        "state": "AL",
        "primeMover": "ALL",
    }


def test_a_null_gas_price_keeps_its_unit_and_description() -> None:
    (observation,) = normalize_route_rows(
        response_rows("openbb_body_ng_pri_sum_null_value.json"), NG_PRICES
    ).observations
    assert (observation.value, observation.value_flag) == (None, "null")
    assert (observation.unit, observation.canonical_unit, observation.canonical_value) == (
        "$/MCF",
        "USD/Mcf",
        None,
    )
    assert observation.description == (
        "U.S. Price of Natural Gas Delivered to Residential Consumers (Dollars per Thousand Cubic Feet)"
    )
    assert observation.area == "NUS"
    assert observation.series_id == "EIA2:natural-gas/pri/sum:value:M:series=N3010US3"


def test_henry_hub_daily_spot_prices() -> None:
    result = normalize_route_rows(response_rows("fc_v2_ng_pri_fut_henry_hub_daily_2026-09.json"), HENRY_HUB)
    assert len(result.observations) == 15
    newest = result.observations[0]
    assert newest.series_id == "EIA2:natural-gas/pri/fut:value:D:series=RNGWHHD"
    assert (newest.period, newest.period_end) == (utc(2026, 9, 22), utc(2026, 9, 23))
    assert (newest.value, newest.unit, newest.canonical_unit) == (2.9, "$/MMBTU", "USD/MMBtu")
    assert newest.description == "Henry Hub Natural Gas Spot Price (Dollars per Million Btu)"


def test_hourly_rows_are_utc_hours_and_fuel_types_are_separate_series() -> None:
    coal, gas = normalize_route_rows(
        response_rows("fc_v2_rto_fuel_type_hourly_first_rows.json"), FUEL_TYPE
    ).observations
    assert (coal.period, coal.period_end, coal.raw_period) == (
        utc(2019, 1, 1, 0),
        utc(2019, 1, 1, 1),
        "2019-01-01T00",
    )
    assert coal.series_id == "EIA2:electricity/rto/fuel-type-data:value:H:fueltype=COL;respondent=US48"
    assert gas.series_id == "EIA2:electricity/rto/fuel-type-data:value:H:fueltype=NG;respondent=US48"
    assert (coal.value, coal.unit, coal.canonical_unit, coal.area) == (
        109616.0,
        "megawatthours",
        "MWh",
        "US48",
    )


def test_local_hourly_rows_start_at_the_utc_instant_of_the_local_hour() -> None:
    row = dict(response_rows("fc_v2_rto_fuel_type_hourly_first_rows.json")[0], period="2023-03-20T00-07")
    (observation,) = normalize_route_rows([row], FUEL_TYPE, frequency="local-hourly").observations
    assert (observation.period, observation.raw_period) == (utc(2023, 3, 20, 7), "2023-03-20T00-07")
    assert observation.frequency == "local-hourly"
    assert observation.series_id.startswith("EIA2:electricity/rto/fuel-type-data:value:HL:")


def test_thousand_megawatthours_convert_to_megawatthours() -> None:
    (observation,) = normalize_route_rows(
        response_rows("fc_v2_electric_power_operational_data_first_row.json"), OPERATIONAL
    ).observations
    assert observation.value == 332493.16
    assert observation.canonical_value == pytest.approx(332493160.0)
    assert (observation.area, observation.sector) == ("US", "99")


def test_a_pipeline_route_whose_total_is_wrong_still_yields_every_row_once() -> None:
    rows = response_rows("myeia_route_petroleum_move_pipe_MD0MP_R10-R20_1_monthly.json")
    result = normalize_route_rows(rows, PIPELINE)
    assert len(result.observations) == 218
    assert {o.canonical_unit for o in result.observations} == {"bbl"}
    assert result.observations[0].canonical_value == 1072000.0
    assert result.observations[0].area == "R10-R20"


def test_the_steo_route_states_its_unit_in_a_unit_column() -> None:
    result = normalize_route_rows(response_rows("myeia_route_steo_PADI_OPEC_monthly.json"), STEO)
    last = result.observations[-1]
    assert (last.raw_period, last.raw_value, last.value) == ("2009-01", ".38705767703", 0.38705767703)
    assert (last.unit, last.canonical_unit) == ("million barrels per day", "bbl/d")
    assert last.series_id == "EIA2:steo:value:M:seriesId=PADI_OPEC"


def test_duplicate_rows_in_a_response_keep_the_first() -> None:
    rows = response_rows("fc_v2_retail_sales_first_rows_warning.json")
    repeat = dict(rows[0], price="9.99")
    result = normalize_route_rows([rows[0], repeat, rows[1]], RETAIL_SALES)
    assert [o.value for o in result.observations] == [6.75, 6.87]
    (rejection,) = result.rejections
    assert rejection.reason == "duplicate_in_response"
    assert rejection.series_id == "EIA2:electricity/retail-sales:price:M:sectorid=ALL;stateid=US"
    assert (rejection.raw_period, rejection.raw_value) == ("2001-01", "9.99")
    assert rejection.payload == repeat
    assert rejection.payload is not repeat


def test_an_impossible_date_is_a_bad_period_not_a_crash() -> None:
    row = dict(response_rows("fc_v2_ng_pri_fut_henry_hub_daily_2026-09.json")[0], period="2023-02-30")
    result = normalize_route_rows([row], HENRY_HUB)
    (rejection,) = result.rejections
    assert result.observations == []
    assert rejection.reason == "bad_period"
    assert rejection.detail == "period '2023-02-30' is not a valid daily period: 2023-02-30 is not a calendar date"
    assert (rejection.series_id, rejection.raw_period, rejection.raw_value) == (
        "EIA2:natural-gas/pri/fut:value:D:series=RNGWHHD",
        "2023-02-30",
        "2.9",
    )


def test_a_period_of_the_wrong_shape_is_a_bad_period() -> None:
    rows = response_rows("fc_v2_retail_sales_first_rows_warning.json")
    result = normalize_route_rows(rows, RETAIL_SALES, frequency="annual")
    assert reasons(result) == ["bad_period", "bad_period"]


@pytest.mark.parametrize("period", [None, ""])
def test_a_row_without_a_period_is_rejected(period: object) -> None:
    row: dict[str, Any] = dict(response_rows("fc_v2_retail_sales_first_rows_warning.json")[0])
    if period is None:
        del row["period"]
    else:
        row["period"] = period
    result = normalize_route_rows([row], RETAIL_SALES)
    assert reasons(result) == ["missing_period"]
    assert result.rejections[0].raw_value == "6.75"


def test_a_row_missing_a_series_facet_is_rejected_without_an_id() -> None:
    row = dict(response_rows("fc_v2_ng_pri_fut_henry_hub_daily_2026-09.json")[0])
    del row["series"]
    (rejection,) = normalize_route_rows([row], HENRY_HUB).rejections
    assert (rejection.reason, rejection.series_id, rejection.raw_period) == (
        "missing_series_id",
        None,
        "2026-09-22",
    )
    assert "series" in rejection.detail


def test_rows_that_are_not_objects_are_bad_rows_once_per_column() -> None:
    result = normalize_route_rows(["oops", None], COAL_PRICES)  # type: ignore[list-item]
    assert reasons(result) == ["bad_row"] * 4
    assert result.rejections[0].payload == {"row": "oops"}


def test_a_row_lacking_a_requested_column_is_a_bad_row_for_that_column_only() -> None:
    row = dict(response_rows("openbb_body_coal_market_sales_price.json")[0])
    del row["sales"]
    result = normalize_route_rows([row], COAL_PRICES)
    assert len(result.observations) == 1
    assert reasons(result) == ["bad_row"]
    assert result.rejections[0].detail == "the row has no data column 'sales'"


def test_an_over_long_series_id_is_rejected() -> None:
    row = dict(response_rows("fc_v2_ng_pri_fut_henry_hub_daily_2026-09.json")[0], series="S" * 300)
    (rejection,) = normalize_route_rows([row], HENRY_HUB).rejections
    assert rejection.reason == "series_id_too_long"
    assert rejection.series_id is None  # too long for the quarantine's index; the payload keeps it
    assert rejection.payload is not None and rejection.payload["series"] == "S" * 300


def test_an_over_long_unit_or_description_is_rejected_not_truncated() -> None:
    base = response_rows("fc_v2_ng_pri_fut_henry_hub_daily_2026-09.json")[0]
    long_unit = dict(base, units="u" * (MAX_TEXT_LENGTH + 1))
    long_description = dict(base, period="2026-09-21", **{"series-description": "d" * (MAX_TEXT_LENGTH + 1)})
    result = normalize_route_rows([long_unit, long_description], HENRY_HUB)
    assert reasons(result) == ["field_too_long", "field_too_long"]
    assert result.rejections[0].detail.startswith("unit is 4097 characters")
    assert result.rejections[1].detail.startswith("description is 4097 characters")


def test_without_series_facets_every_filtered_facet_in_the_row_identifies_the_series() -> None:
    entry = CatalogEntry(
        id="x",
        route="electricity/retail-sales",
        frequency="monthly",
        data=("price",),
        facets=RETAIL_SALES.facets,
    )
    result = normalize_route_rows(response_rows("fc_v2_retail_sales_first_rows_warning.json"), entry)
    assert result.observations[0].series_id == "EIA2:electricity/retail-sales:price:M:sectorid=ALL;stateid=US"


def test_an_unknown_frequency_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="fortnightly"):
        normalize_route_rows([], RETAIL_SALES, frequency="fortnightly")


def test_the_input_rows_are_not_modified() -> None:
    rows = response_rows("openbb_body_facility_fuel.json")
    before = copy.deepcopy(rows)
    normalize_route_rows(rows, FACILITY_FUEL)
    assert rows == before


def test_seriesid_rows_use_the_v1_id_and_integer_annual_periods() -> None:
    rows = response_rows(INTL)
    result = normalize_seriesid_rows("INTL.29-12-HKG-BKWH.A", rows, frequency="annual")
    assert result.rejections == []
    assert len(result.observations) == 44
    na, numeric = result.observations[0], result.observations[1]
    assert (na.series_id, na.dataset, na.source) == ("INTL.29-12-HKG-BKWH.A", "INTL", SOURCE_API)
    assert (na.period, na.period_end, na.raw_period) == (utc(2023, 1, 1), utc(2024, 1, 1), "2023")
    assert (na.value, na.raw_value, na.value_flag) == (None, "NA", "NA")
    assert (na.unit, na.canonical_unit, na.conversion_factor) == ("billion kilowatthours", "MWh", 1e6)
    assert na.metadata is not None
    assert na.metadata["dataFlagId"] == 2
    assert na.metadata["dataFlagDescription"] == "Data are unavailable (temporarily)"
    assert na.metadata["productName"] == "Renewables"
    assert (numeric.raw_period, numeric.value, numeric.raw_value) == ("2022", 0.230242794, "0.230242794")
    assert numeric.canonical_value == pytest.approx(230242.794)
    assert numeric.metadata is not None and "dataFlagId" not in numeric.metadata


def test_a_value_flagged_rounds_to_zero_keeps_its_number_and_its_flag_in_metadata() -> None:
    result = normalize_seriesid_rows("INTL.29-12-HKG-BKWH.A", response_rows(INTL), frequency="annual")
    flagged = [o for o in result.observations if o.metadata and o.metadata.get("dataFlagId") == 5]
    assert len(flagged) == 10
    assert flagged[0].raw_period == "2015"
    assert (flagged[0].value, flagged[0].value_flag) == (0.077, None)


def test_steo_seriesid_rows() -> None:
    rows = response_rows(STEO_SERIES)
    result = normalize_seriesid_rows("STEO.PATC_WORLD.M", rows, frequency="monthly")
    assert len(result.observations) == 432
    assert result.rejections == []
    first = result.observations[0]
    assert (first.raw_period, first.value, first.unit) == ("2025-12", 106.14815702, "million barrels per day")
    assert first.description == "Liquid Fuels Consumption, Total World"
    assert first.dataset == "STEO"
    assert first.metadata is None


def test_a_seriesid_description_argument_wins_over_the_rows() -> None:
    rows = response_rows(STEO_SERIES)[:1]
    (observation,) = normalize_seriesid_rows(
        "STEO.PATC_WORLD.M", rows, frequency="monthly", description="d"
    ).observations
    assert observation.description == "d"


def test_seriesid_rejections_follow_the_same_rules() -> None:
    rows = response_rows(INTL)
    broken = [rows[1], dict(rows[1], value=1.0), dict(rows[2], period=2021.5), {"period": 2020}, "x"]
    result = normalize_seriesid_rows("INTL.29-12-HKG-BKWH.A", broken, frequency="annual")  # type: ignore[arg-type]
    assert [o.value for o in result.observations] == [0.230242794]
    assert reasons(result) == ["duplicate_in_response", "bad_period", "bad_row", "bad_row"]
    assert result.rejections[0].series_id == "INTL.29-12-HKG-BKWH.A"
    assert result.rejections[1].raw_period == "2021.5"
    assert result.rejections[2].raw_period == "2020"
