"""Route series ids are deterministic, readable and collision-free; observations are built in one place."""

from __future__ import annotations

import pytest

from tasks.normalize.identity import (
    ResultBuilder,
    frequency_code,
    route_series_id,
    series_context,
)
from tasks.normalize.observation import MAX_SERIES_ID_LENGTH, MAX_TEXT_LENGTH, SOURCE_API
from tasks.normalize.periods import parse_period


def test_a_route_series_id_names_route_column_frequency_and_sorted_facets() -> None:
    series_id = route_series_id("electricity/retail-sales", "price", "monthly", {"stateid": "US", "sectorid": "ALL"})
    assert series_id == "EIA2:electricity/retail-sales:price:M:sectorid=ALL;stateid=US"


def test_the_id_does_not_depend_on_facet_order() -> None:
    a = route_series_id("electricity/rto/fuel-type-data", "value", "hourly", {"respondent": "US48", "fueltype": "NG"})
    b = route_series_id("electricity/rto/fuel-type-data", "value", "hourly", {"fueltype": "NG", "respondent": "US48"})
    assert a == b == "EIA2:electricity/rto/fuel-type-data:value:H:fueltype=NG;respondent=US48"


@pytest.mark.parametrize(
    ("frequency", "code"),
    [
        ("annual", "A"),
        ("quarterly", "Q"),
        ("monthly", "M"),
        ("weekly", "W"),
        ("daily", "D"),
        ("hourly", "H"),
        ("local-hourly", "HL"),
        ("HL", "HL"),
    ],
)
def test_frequencies_appear_as_short_codes(frequency: str, code: str) -> None:
    assert frequency_code(frequency) == code
    assert route_series_id("steo", "value", frequency, {}) == f"EIA2:steo:value:{code}:"


def test_an_unknown_frequency_is_refused() -> None:
    with pytest.raises(ValueError, match="four-week-average"):
        route_series_id("petroleum/pnp/wiup", "value", "four-week-average", {})


def test_separators_inside_facet_values_cannot_collide() -> None:
    sneaky = route_series_id("r", "value", "annual", {"a": "x;b=y"})
    honest = route_series_id("r", "value", "annual", {"a": "x", "b": "y"})
    assert sneaky != honest
    assert sneaky == "EIA2:r:value:A:a=x%3Bb%3Dy"
    assert route_series_id("r", "value", "annual", {"a": "50%:1"}) == "EIA2:r:value:A:a=50%25%3A1"


def test_escaping_is_reversible_for_percent_itself() -> None:
    assert route_series_id("r", "v", "A", {"a": "%3B"}) != route_series_id("r", "v", "A", {"a": ";"})


def test_an_observation_carries_the_canonical_value() -> None:
    context = series_context(
        "S", frequency="monthly", unit="thousand megawatthours", source=SOURCE_API, dataset="d", area="US"
    )
    observation = context.observe(parse_period("2001-01", "monthly"), 332493.16, "332493.16", None)
    assert observation.canonical_unit == "MWh"
    assert observation.conversion_factor == 1000.0
    assert observation.canonical_value == pytest.approx(332493160.0)
    assert observation.area == "US"


def test_an_unknown_unit_has_no_canonical_fields() -> None:
    context = series_context("S", frequency="annual", unit="furlongs", source=SOURCE_API, dataset=None)
    observation = context.observe(parse_period("2001", "annual"), 1.0, "1", None)
    assert (observation.unit, observation.canonical_unit, observation.conversion_factor) == (
        "furlongs",
        None,
        None,
    )
    assert observation.canonical_value is None


def test_a_value_that_overflows_when_scaled_has_no_canonical_value() -> None:
    context = series_context("S", frequency="annual", unit="Quadrillion Btu", source=SOURCE_API, dataset=None)
    observation = context.observe(parse_period("2001", "annual"), 1e300, "1e300", None)
    assert observation.value == 1e300
    assert observation.canonical_value is None


def test_the_first_of_a_repeated_period_wins() -> None:
    builder = ResultBuilder()
    context = series_context("S", frequency="monthly", unit=None, source=SOURCE_API, dataset=None)
    period = parse_period("2024-01", "monthly")
    assert builder.accept(context, period, 1.0, "1", None) is None
    reason, detail = builder.accept(context, period, 2.0, "2", None) or ("", "")
    assert reason == "duplicate_in_response"
    assert "'2024-01'" in detail
    assert [o.value for o in builder.result.observations] == [1.0]


def test_two_local_hours_naming_the_same_utc_instant_are_duplicates() -> None:
    builder = ResultBuilder()
    context = series_context("S", frequency="local-hourly", unit=None, source=SOURCE_API, dataset=None)
    assert builder.accept(context, parse_period("2023-03-20T00-07", "local-hourly"), 1.0, "1", None) is None
    outcome = builder.accept(context, parse_period("2023-03-20T01-06", "local-hourly"), 1.0, "1", None)
    assert outcome is not None and outcome[0] == "duplicate_in_response"


def test_an_over_long_token_is_rejected_not_truncated() -> None:
    builder = ResultBuilder()
    context = series_context("S", frequency="annual", unit=None, source=SOURCE_API, dataset=None)
    token = "w" * (MAX_TEXT_LENGTH + 1)
    outcome = builder.accept(context, parse_period("2024", "annual"), None, token, token)
    assert outcome is not None and outcome[0] == "field_too_long"
    assert builder.result.observations == []


def test_series_level_problems_are_reported() -> None:
    long_id = series_context("S" * (MAX_SERIES_ID_LENGTH + 1), frequency="annual", unit=None, source="x", dataset=None)
    assert long_id.problem() == (
        "series_id_too_long",
        f"series id is {MAX_SERIES_ID_LENGTH + 1} characters, longer than {MAX_SERIES_ID_LENGTH}",
    )
    long_text = series_context(
        "S", frequency="annual", unit=None, source="x", dataset=None, description="d" * (MAX_TEXT_LENGTH + 1)
    )
    problem = long_text.problem()
    assert problem is not None
    assert problem[0] == "field_too_long"
    assert problem[1].startswith("description is 4097 characters")
    assert series_context("S", frequency="annual", unit="%", source="x", dataset=None).problem() is None
