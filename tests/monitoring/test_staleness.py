"""Staleness: cadence per frequency, business days for daily prices, publication lag per catalog entry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from flows.monitoring import eia_staleness_monitor, monitor_result
from tasks.core.catalog import parse_catalog
from tasks.monitoring.staleness import (
    CadenceMap,
    SeriesExtent,
    StalenessReport,
    assess,
    assess_series,
    business_days_between,
    cadence_for,
    count_periods,
    is_business_day,
    latest_due_period,
    us_market_holidays,
)
from tests.monitoring.conftest import days, insert_observations, months, write_catalog

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday, the day before Thanksgiving


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_us_exchange_holidays_follow_the_observed_rules() -> None:
    assert us_market_holidays(2026) == {
        date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 4, 3), date(2026, 5, 25),
        date(2026, 6, 19), date(2026, 7, 3), date(2026, 9, 7), date(2026, 11, 26), date(2026, 12, 25),
    }  # fmt: skip
    assert date(2022, 1, 1) not in us_market_holidays(2022)  # a Saturday New Year's Day is not moved back
    assert date(2021, 12, 31) not in us_market_holidays(2021)
    assert date(2021, 6, 18) not in us_market_holidays(2021)  # Juneteenth only from 2022
    assert date(2027, 6, 18) in us_market_holidays(2027)  # Saturday → Friday
    assert not is_business_day(date(2026, 11, 28)) and is_business_day(date(2026, 11, 27))
    assert business_days_between(date(2026, 1, 1), date(2026, 12, 31)) == 251
    assert business_days_between(date(2026, 11, 23), date(2026, 11, 29)) == 4  # Thanksgiving week


def test_a_daily_price_series_skips_the_weekend_and_the_holiday() -> None:
    prices = cadence_for("daily", lag_days=1, business_days=True)
    # Friday 2026-11-20 loaded; Monday is due Tuesday + 1 day lag = Wednesday 00:00.
    friday = assess_series("p", utc(2026, 11, 20), prices, NOW)
    assert friday.next_period == utc(2026, 11, 23)
    assert friday.due_at == utc(2026, 11, 25)
    assert friday.lateness == timedelta(hours=12) and friday.stale
    assert friday.missing_periods == 1  # Monday is due; Tuesday not yet
    # Wednesday 2026-11-25 loaded at 12:00: next is Friday (Thanksgiving is skipped), due Sunday.
    fresh = assess_series("p", utc(2026, 11, 25), prices, NOW)
    assert fresh.next_period == utc(2026, 11, 27) and not fresh.stale
    everyday = cadence_for("daily", lag_days=1)
    assert assess_series("e", utc(2026, 11, 20), everyday, NOW).next_period == utc(2026, 11, 21)


def test_monthly_and_annual_series_wait_for_their_publication_lag() -> None:
    monthly = cadence_for("monthly", lag_days=60)
    assert not assess_series("m", utc(2026, 8, 1), monthly, NOW).stale  # September is due on 2026-11-30
    late = assess_series("m", utc(2026, 6, 1), monthly, NOW)
    assert late.due_at == utc(2026, 9, 30)
    assert late.lateness == NOW - utc(2026, 9, 30)
    assert late.missing_periods == 2  # July and August
    annual = cadence_for("annual", lag_days=300)
    assert not assess_series("a", utc(2025, 1, 1), annual, NOW).stale  # 2026 is due 300 days after it ends
    assert assess_series("a", utc(2025, 1, 1), annual, NOW).due_at == utc(2027, 1, 1) + timedelta(days=300)
    assert assess_series("a", utc(2024, 1, 1), annual, NOW).lateness == NOW - utc(2026, 10, 28)


def test_period_counting_matches_the_calendar() -> None:
    monthly = cadence_for("monthly", lag_days=60)
    assert latest_due_period(utc(2020, 1, 1), monthly, NOW) == utc(2026, 8, 1)
    assert count_periods(utc(2026, 1, 1), utc(2026, 8, 1), monthly) == 8
    hourly = cadence_for("hourly", lag_days=2)
    assert latest_due_period(utc(2026, 1, 1), hourly, NOW) == utc(2026, 11, 23, 11)
    assert count_periods(utc(2026, 11, 23), utc(2026, 11, 23, 11), hourly) == 12
    quarterly = cadence_for("quarterly", lag_days=120)
    assert latest_due_period(utc(2020, 1, 1), quarterly, NOW) == utc(2026, 4, 1)


CATALOG = {
    "version": "t",
    "entries": [
        {"id": "retail", "route": "electricity/retail-sales", "frequency": "monthly", "data": ["price"],
         "publication_lag_days": 60},
        {"id": "henry-hub", "route": "natural-gas/pri/fut", "frequency": "daily", "data": ["value"],
         "publication_lag_days": 1},
        {"id": "never-loaded", "route": "coal/shipments", "frequency": "annual", "data": ["value"]},
    ],
    "series_ids": [],
}  # fmt: skip


def test_the_catalog_decides_each_series_cadence_and_an_entry_without_data_is_listed() -> None:
    cadences = CadenceMap.from_catalog(parse_catalog(CATALOG))
    series = [
        SeriesExtent("RETAIL.FRESH", "monthly", "electricity/retail-sales", utc(2026, 8, 1)),
        SeriesExtent("RETAIL.LATE", "monthly", "electricity/retail-sales", utc(2026, 6, 1)),
        SeriesExtent("HH", "daily", "natural-gas/pri/fut", utc(2026, 11, 20)),
        SeriesExtent("BULK.ONLY", "monthly", "ELEC", utc(2020, 1, 1)),
    ]
    report: StalenessReport = assess(cadences, series, NOW)
    assert [s.series_id for s in report.stale] == ["entry:never-loaded", "RETAIL.LATE", "HH"]
    assert [s.series_id for s in report.fresh] == ["RETAIL.FRESH"]
    hh = next(s for s in report.items if s.series_id == "HH")
    assert hh.lateness_hours == 12.0  # business days: the price route steps over the weekend
    assert "BULK.ONLY" not in {s.series_id for s in report.items}
    assert "BULK.ONLY" in {s.series_id for s in assess(cadences, series, NOW, include_uncataloged=True).items}


@pytest.mark.slow
async def test_the_staleness_flow_lists_the_series_left_behind_with_its_lateness_and_not_the_fresh_one(
    monitor_blocks: str, tmp_path: Path
) -> None:
    catalog = write_catalog(tmp_path, CATALOG["entries"][:2])  # type: ignore[index]
    insert_observations(
        monitor_blocks,
        "RETAIL.FRESH",
        dataset="electricity/retail-sales",
        frequency="monthly",
        periods=months(utc(2025, 1, 1), 20),
    )  # through 2026-08
    insert_observations(
        monitor_blocks,
        "RETAIL.LATE",
        dataset="electricity/retail-sales",
        frequency="monthly",
        periods=months(utc(2025, 1, 1), 18),
    )  # through 2026-06: July is overdue
    insert_observations(
        monitor_blocks,
        "HH",
        dataset="natural-gas/pri/fut",
        frequency="daily",
        periods=days(utc(2026, 11, 16), [0, 1, 2, 3, 4, 7, 8]),
    )  # through Tuesday 11-24

    state = await eia_staleness_monitor(catalog_path=catalog, as_of=NOW, return_state=True)
    result = monitor_result(state)
    assert state.is_completed() and result is not None, state.message

    stale = {row["series"]: row for row in result.rows}
    assert set(stale) == {"RETAIL.LATE"}
    assert stale["RETAIL.LATE"]["late_hours"] == round((NOW - utc(2026, 9, 30)).total_seconds() / 3600, 2) == 1356.0
    assert stale["RETAIL.LATE"]["missing_periods"] == 2
    assert "RETAIL.LATE" in result.markdown and "1356.0" in result.markdown
    assert "RETAIL.FRESH" not in result.markdown
    assert result.events == ["eia.monitor.breached: stale_series", "eia.monitor.breached: series:RETAIL.LATE"]
    with psycopg.connect(monitor_blocks) as conn:
        snapshot = dict(conn.execute("SELECT series_id, stale FROM eia_series_staleness").fetchall())
    assert snapshot == {"RETAIL.FRESH": False, "RETAIL.LATE": True, "HH": False}

    # The next run finds the same: no new event (a crossing is reported once).
    again = monitor_result(await eia_staleness_monitor(catalog_path=catalog, as_of=NOW, return_state=True))
    assert again is not None and again.events == []
    # July arrives: the series recovers, and that is one event too.
    insert_observations(
        monitor_blocks,
        "RETAIL.LATE",
        dataset="electricity/retail-sales",
        frequency="monthly",
        periods=months(utc(2026, 7, 1), 2),
    )
    recovered = monitor_result(await eia_staleness_monitor(catalog_path=catalog, as_of=NOW, return_state=True))
    assert recovered is not None and recovered.rows == []
    assert recovered.events == ["eia.monitor.recovered: stale_series", "eia.monitor.recovered: series:RETAIL.LATE"]
