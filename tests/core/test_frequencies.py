"""The frequency table: each EIA frequency once, with every fact the parser, rules, staleness and planner read."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from tasks.core.frequencies import (
    BULK_FREQUENCY_CODES,
    BY_CODE,
    BY_NAME,
    BY_VOLUME,
    FREQUENCIES,
    FREQUENCY_TABLE,
    Months,
)

HOUR = timedelta(hours=1)


def test_each_eia_frequency_is_listed_once_with_its_bulk_code() -> None:
    assert FREQUENCIES == ("annual", "quarterly", "monthly", "weekly", "daily", "hourly", "local-hourly")
    assert dict(BULK_FREQUENCY_CODES) == {
        "A": "annual",
        "Q": "quarterly",
        "M": "monthly",
        "W": "weekly",
        "D": "daily",
        "H": "hourly",
        "HL": "local-hourly",
    }
    assert [BY_CODE[code].name for code in BULK_FREQUENCY_CODES] == list(FREQUENCIES)
    assert [BY_NAME[name].code for name in FREQUENCIES] == list(BULK_FREQUENCY_CODES)


def test_lengths_are_calendar_months_or_fixed_strides() -> None:
    lengths = {f.name: f.length for f in FREQUENCY_TABLE}
    assert lengths == {
        "annual": Months(12),
        "quarterly": Months(3),
        "monthly": Months(1),
        "weekly": 168 * HOUR,
        "daily": 24 * HOUR,
        "hourly": HOUR,
        "local-hourly": HOUR,
    }
    assert [f.name for f in FREQUENCY_TABLE if f.calendar] == ["annual", "quarterly", "monthly"]


def test_periods_start_on_their_own_boundary_except_weeks_which_start_on_any_midnight() -> None:
    assert BY_NAME["weekly"].alignment == 24 * HOUR
    assert all(f.alignment == f.length for f in FREQUENCY_TABLE if f.name != "weekly")


def test_token_shapes_of_the_api_and_of_bulk_files() -> None:
    assert {f.name: (f.api_shape, f.bulk_shape) for f in FREQUENCY_TABLE} == {
        "annual": ("YYYY", "YYYY"),
        "quarterly": ("YYYY-QN", "YYYYQN"),
        "monthly": ("YYYY-MM", "YYYYMM"),
        "weekly": ("YYYY-MM-DD", "YYYYMMDD"),
        "daily": ("YYYY-MM-DD", "YYYYMMDD"),
        "hourly": ("YYYY-MM-DDTHH", "YYYYMMDDTHHZ"),
        "local-hourly": ("YYYY-MM-DDTHH±HH", "YYYYMMDDTHH±HH"),
    }


def test_forecasts_may_start_years_ahead_and_freshness_allows_the_publication_lag_plus_headroom() -> None:
    days = timedelta(days=1)
    assert {f.name: (f.future_tolerance, f.freshness) for f in FREQUENCY_TABLE} == {
        "annual": (Months(36), Months(36)),
        "quarterly": (Months(36), Months(15)),
        "monthly": (Months(36), Months(12)),
        "weekly": (14 * days, 35 * days),
        "daily": (7 * days, 21 * days),
        "hourly": (2 * days, 7 * days),
        "local-hourly": (2 * days, 7 * days),
    }


def test_trailing_windows_and_publication_lags() -> None:
    assert {f.name: (f.trailing_window.days, f.publication_lag.days) for f in FREQUENCY_TABLE} == {
        "annual": (3 * 366, 365),
        "quarterly": (366, 120),
        "monthly": (186, 60),
        "weekly": (56, 10),
        "daily": (14, 7),
        "hourly": (3, 2),
        "local-hourly": (3, 2),
    }


def test_by_volume_puts_the_frequencies_with_most_rows_per_year_first() -> None:
    by_volume = [f.name for f in BY_VOLUME]
    assert by_volume == ["hourly", "local-hourly", "daily", "weekly", "monthly", "quarterly", "annual"]
    assert BY_NAME["hourly"].per_year == pytest.approx(8765.82)
    assert BY_NAME["weekly"].per_year == pytest.approx(52.18, abs=0.01)
    assert (BY_NAME["monthly"].per_year, BY_NAME["annual"].per_year) == (12, 1)


def test_the_table_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BY_NAME["monthly"].code = "MO"  # type: ignore[misc]
    with pytest.raises(TypeError):
        BY_CODE["X"] = BY_NAME["monthly"]  # type: ignore[index]
    with pytest.raises(TypeError):
        BULK_FREQUENCY_CODES["X"] = "x"  # type: ignore[index]
