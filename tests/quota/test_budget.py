"""Budget arithmetic: exact spend, projection, percent and state for a known history; spikes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from tasks.quota.budget import (
    CostPolicy,
    budget_snapshot,
    effective_limits,
    elapsed_fraction,
    hourly_spike,
    month_bounds,
    spend_usd,
)
from tasks.quota.status import quota_status
from tests.quota.conftest import TENANT, insert_history

# The real charge-back rate, with a budget small enough that 100% is 100,000 requests ($0.50).
SMALL = CostPolicy(monthly_budget_usd=Decimal("0.50"), cost_per_1000_requests=Decimal("0.005"))
NOW = datetime(2026, 11, 10, tzinfo=UTC)  # 9 of November's 30 days elapsed: exactly 0.3 of the month

# requests → (spend, projected, percent of budget, projected percent, state)
CASES = {
    69_000: ("0.35", "1.15", "69.00", "230.00", "ok"),  # exact spend 0.345 rounds half up
    70_000: ("0.35", "1.17", "70.00", "233.33", "warning"),
    85_000: ("0.43", "1.42", "85.00", "283.33", "critical"),  # 0.425 → 0.43; 1.41666… → 1.42
    100_000: ("0.50", "1.67", "100.00", "333.33", "critical"),
}


@pytest.mark.parametrize("requests", sorted(CASES))
def test_spend_projection_percent_and_state_are_exact_to_the_cent(requests: int) -> None:
    snap = budget_snapshot(requests, SMALL, NOW)

    spend, projected, pct, projected_pct, state = CASES[requests]
    assert elapsed_fraction(NOW) == Decimal("0.3")
    assert (str(snap.spend_usd), str(snap.projected_usd)) == (spend, projected)
    assert (str(snap.percent_of_budget), str(snap.projected_percent_of_budget)) == (pct, projected_pct)
    assert snap.state == state
    assert snap.spend_exact_usd == Decimal(requests) * Decimal("0.000005")


def test_the_runbook_figures_are_tiny_because_the_api_is_free() -> None:
    # errata §7: 100,000 requests a day at $0.005 per 1,000 is $0.50.
    assert spend_usd(100_000, Decimal("0.005")) == Decimal("0.5")
    snap = budget_snapshot(3_000_000, CostPolicy(), datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC))
    assert (str(snap.spend_usd), str(snap.budget_usd), snap.state) == ("15.00", "10000.00", "ok")


def test_just_below_a_threshold_is_not_yet_there() -> None:
    # 69,999 requests: 69.999% of the budget shows as 70.00 but is not yet a warning.
    snap = budget_snapshot(69_999, SMALL, NOW)
    assert (str(snap.percent_of_budget), snap.state) == ("70.00", "ok")
    assert budget_snapshot(84_999, SMALL, NOW).state == "warning"


def test_the_projection_is_linear_in_the_elapsed_part_of_the_month() -> None:
    start, end = month_bounds(NOW)
    assert (start, end) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    assert month_bounds(datetime(2026, 12, 31, 23, tzinfo=UTC))[1] == datetime(2027, 1, 1, tzinfo=UTC)
    half = budget_snapshot(50_000, SMALL, datetime(2026, 11, 16, tzinfo=UTC))
    assert str(half.projected_usd) == "0.50"
    assert budget_snapshot(10, SMALL, start).projected_usd == Decimal("0.00")  # nothing elapsed: no projection


def test_effective_limits_are_capped_by_eia_guidance_unless_overridden() -> None:
    capped = effective_limits(CostPolicy())
    assert (capped.hourly, capped.daily, capped.hourly_capped, capped.daily_capped) == (9_000, 100_000, True, False)
    raw = effective_limits(CostPolicy(eia_guidance_override=True))
    assert (raw.hourly, raw.daily) == (20_000, 100_000)
    assert effective_limits(CostPolicy(daily_request_limit=500_000)).daily == 216_000


def test_a_spike_fires_only_above_150_percent_of_the_trailing_average() -> None:
    trailing = [100] * 24
    threshold = Decimal(150)
    assert not hourly_spike(150, trailing, threshold).firing
    assert str(hourly_spike(150, trailing, threshold).ratio_percent) == "150.00"
    assert hourly_spike(151, trailing, threshold).firing
    assert not hourly_spike(500, [0] * 24, threshold).firing  # nothing to compare with
    uneven = hourly_spike(61, [40] * 12 + [0] * 12, threshold)  # average 20/h: 305%
    assert (str(uneven.trailing_average), str(uneven.ratio_percent), uneven.firing) == ("20", "305.00", True)


@pytest.mark.parametrize("requests", sorted(CASES))
def test_quota_status_from_a_ledger_history_gives_the_same_exact_figures(db: str, requests: int) -> None:
    # The month's requests spread over earlier days, plus a quiet trailing day and this hour.
    first, second = requests // 2, requests - requests // 2
    insert_history(db, {datetime(2026, 11, 2, 5, tzinfo=UTC): first, datetime(2026, 11, 8, 17, tzinfo=UTC): second})
    insert_history(db, {datetime(2026, 10, 31, 23, tzinfo=UTC): 999})  # last month: not this month's spend

    with psycopg.connect(db) as conn:
        status = quota_status(conn, TENANT, SMALL, NOW)

    spend, projected, pct, _, state = CASES[requests]
    data = status.as_dict()
    assert status.budget.requests == requests
    assert (data["budget"]["spend_usd"], data["budget"]["projected_usd"]) == (spend, projected)
    assert (data["budget"]["percent_of_budget"], data["budget"]["state"]) == (pct, state)
    assert data["day"]["used"] == 0 and data["state"] == state


def test_quota_status_reports_hour_day_usage_and_a_spike(db: str) -> None:
    now = datetime(2026, 11, 10, 14, 30, tzinfo=UTC)
    hour = now.replace(minute=0)
    history = {hour - timedelta(hours=h): 100 for h in range(1, 25)}  # 24 trailing hours at 100/h
    history[hour] = 151
    insert_history(db, history)
    policy = CostPolicy(daily_request_limit=2_000)

    with psycopg.connect(db) as conn:
        status = quota_status(conn, TENANT, policy, now)

    assert (status.hour.used, status.hour.limit, status.hour.remaining) == (151, 9_000, 8_849)
    assert status.day.used == 100 * 14 + 151  # 00:00-13:00 plus this hour
    assert (status.day.limit, status.day.configured_limit, status.day.remaining) == (2_000, 2_000, 449)
    assert str(status.day.percent) == "77.55" and status.day.state == "warning"
    assert status.state == "warning"  # the day's quota, while the budget is fine
    assert status.spike.firing and str(status.spike.ratio_percent) == "151.00"
    assert status.rate.throttling_active
    assert status.rate.quota_spread_per_s == pytest.approx(449 / (9.5 * 3600))
