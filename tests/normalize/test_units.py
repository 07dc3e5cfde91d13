"""The unit table: every unit EIA sent in the samples maps to a canonical unit; nothing is guessed."""

from __future__ import annotations

from importlib import resources

import pytest

from tasks.normalize.units import (
    COLUMNS,
    QUANTITIES,
    UnitMapping,
    UnitTableError,
    lookup_unit,
    parse_unit_table,
    unit_key,
    unit_table,
)
from tests.normalize import sample_units

SAMPLE_UNITS = sample_units()
HEADER = ",".join(COLUMNS)


def test_the_samples_state_many_units() -> None:
    assert len(SAMPLE_UNITS) >= 30  # the packaged samples alone state 34


@pytest.mark.parametrize("unit", sorted(SAMPLE_UNITS))
def test_every_sample_unit_is_in_the_unit_table(unit: str) -> None:
    assert lookup_unit(unit) is not None, f"{unit!r} (from {SAMPLE_UNITS[unit]}) is not in units.csv"


@pytest.mark.parametrize(
    ("unit", "canonical", "factor"),
    [
        ("cents per kilowatt-hour", "USD/kWh", 0.01),
        ("cents per kilowatthour", "USD/kWh", 0.01),  # the older spelling: its own explicit row
        ("thousand megawatthours", "MWh", 1000),
        ("megawatthours", "MWh", 1),
        ("million kilowatt hours", "MWh", 1000),
        ("billion kilowatthours", "MWh", 1e6),
        ("BKWH", "MWh", 1e6),
        ("Quadrillion Btu", "Btu", 1e15),
        ("Billion Btu", "MMBtu", 1000),
        ("MMBtu", "MMBtu", 1),
        ("Million Barrels", "bbl", 1e6),
        ("MMbbl", "bbl", 1e6),
        ("MBBL", "bbl", 1000),
        ("Thousand Gallons", "gal", 1000),
        ("Mgal", "gal", 1000),
        ("Million Cubic Feet", "Mcf", 1000),
        ("MMcf", "Mcf", 1000),
        ("Thousand Barrels per Day", "bbl/d", 1000),
        ("million barrels per day", "bbl/d", 1e6),
        ("$/MMBTU", "USD/MMBtu", 1),
        ("Dollars per million Btu", "USD/MMBtu", 1),
        ("$/MCF", "USD/Mcf", 1),
        ("$/GAL", "USD/gal", 1),
        ("$/BBL", "USD/bbl", 1),
        ("Dollars per Barrel", "USD/bbl", 1),
        ("$/short ton", "USD/short ton", 1),
        ("dollars per short ton", "USD/short ton", 1),
        ("short tons", "short ton", 1),
        ("thousand tons", "short ton", 1000),
        ("million dollars", "USD", 1e6),
        ("Megawatts", "MW", 1),
        ("Percent", "percent", 1),
        ("%", "percent", 1),
        ("number of customers", "count", 1),
    ],
)
def test_units_convert_to_their_canonical_unit(unit: str, canonical: str, factor: float) -> None:
    mapping = lookup_unit(unit)
    assert mapping is not None
    assert (mapping.canonical_unit, mapping.conversion_factor) == (canonical, factor)


def test_cents_per_kilowatt_hour_is_a_usd_price_at_one_hundredth() -> None:
    assert lookup_unit("cents per kilowatt-hour") == UnitMapping(
        unit="cents per kilowatt-hour",
        canonical_unit="USD/kWh",
        canonical_currency="USD",
        conversion_factor=0.01,
        quantity="price",
        min_value=0.0,
        max_value=10.0,
    )


def test_matching_ignores_only_case_and_whitespace() -> None:
    assert lookup_unit("  CENTS   per\tKilowatt-Hour ") == lookup_unit("cents per kilowatt-hour")
    assert unit_key("  Million   Cubic Feet ") == "million cubic feet"


@pytest.mark.parametrize(
    "unit", ["cents per kilowatthours", "cents per kWh", "MMcf.", "million cubic foot", "dollars/MMBtu", "$"]
)
def test_a_near_miss_is_unknown_not_guessed(unit: str) -> None:
    assert lookup_unit(unit) is None


@pytest.mark.parametrize("unit", [None, "", "   "])
def test_a_missing_unit_has_no_mapping(unit: str | None) -> None:
    assert lookup_unit(unit) is None


def test_the_table_is_read_once_and_sized_for_eia() -> None:
    table = unit_table()
    assert unit_table() is table
    assert 80 <= len(table) <= 150


def test_every_row_is_consistent() -> None:
    for key, mapping in unit_table().items():
        assert key == unit_key(mapping.unit)
        assert mapping.quantity in QUANTITIES
        assert mapping.conversion_factor > 0
        assert (mapping.canonical_currency == "USD") == mapping.canonical_unit.startswith("USD"), key
        if mapping.quantity == "price":
            assert mapping.canonical_currency == "USD", key
        if mapping.quantity == "count":
            assert mapping.min_value == 0, key


def test_prices_are_non_negative_except_where_eia_publishes_negative_prices() -> None:
    for key, mapping in unit_table().items():
        if mapping.quantity != "price":
            continue
        if mapping.canonical_unit in ("USD/bbl", "USD/MWh"):  # WTI on 2020-04-20; wholesale power
            assert mapping.min_value is None, key
        else:
            assert mapping.min_value == 0, key


@pytest.mark.parametrize(
    "unit",
    ["megawatthours", "thousand megawatthours", "Million Cubic Feet", "Million Barrels", "billion Btu"],
)
def test_energy_and_volume_allow_negative_net_figures(unit: str) -> None:
    mapping = lookup_unit(unit)
    assert mapping is not None
    assert mapping.min_value is None


def test_the_packaged_csv_has_the_documented_header() -> None:
    text = resources.files("tasks.normalize").joinpath("units.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER


def test_a_unit_repeated_up_to_case_is_a_table_error() -> None:
    text = f"{HEADER}\nPercent,percent,,1,ratio,,\npercent,percent,,1,ratio,,\n"
    with pytest.raises(UnitTableError, match="line 3: unit 'percent' repeats 'Percent'"):
        parse_unit_table(text)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("x,y,,0,ratio,,", "conversion_factor must be positive"),
        ("x,y,,abc,ratio,,", "conversion_factor 'abc' is not a number"),
        ("x,y,,1,speed,,", "quantity 'speed'"),
        ("x,y,EUR,1,price,,", "canonical_currency 'EUR'"),
        ("x,y,,1,ratio,5,1", "min_value is greater than max_value"),
        ("x,y,,1,ratio", "expected 7 fields"),
        (",y,,1,ratio,,", "must not be empty"),
    ],
)
def test_malformed_rows_name_the_line_and_field(row: str, message: str) -> None:
    with pytest.raises(UnitTableError, match="line 2") as raised:
        parse_unit_table(f"{HEADER}\n{row}\n")
    assert message in str(raised.value)


def test_a_wrong_header_is_a_table_error() -> None:
    with pytest.raises(UnitTableError, match="header"):
        parse_unit_table("unit,factor\nx,1\n")


def test_rows_sharing_a_canonical_unit_agree_on_quantity_currency_and_range() -> None:
    by_canonical: dict[str, set[tuple[object, ...]]] = {}
    for mapping in unit_table().values():
        facts = (mapping.quantity, mapping.canonical_currency, mapping.min_value, mapping.max_value)
        by_canonical.setdefault(mapping.canonical_unit, set()).add(facts)
    assert {unit: facts for unit, facts in by_canonical.items() if len(facts) > 1} == {}
