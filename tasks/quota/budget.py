"""Budget arithmetic for the cost controls: pure functions on exact decimals, no I/O.

The EIA API is free; `cost_per_1000_requests` is an internal charge-back rate (errata §7), so the
amounts are tiny ($0.50 for 100,000 requests) and must still come out exact to the cent. Kept pure
so the thresholds (70% warning, 85% critical, 150% hourly spike) are tested on fixed numbers, and so
`eia quota status`, the cost-monitoring flow and the metrics collector all compute the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

State = Literal["ok", "warning", "critical"]
STATES: tuple[State, ...] = ("ok", "warning", "critical")

# EIA's guidance (errata §4): sustained below about 9,000 requests an hour, bursts below 5 a second.
GUIDANCE_HOURLY_REQUESTS = 9_000
GUIDANCE_DAILY_REQUESTS = 24 * GUIDANCE_HOURLY_REQUESTS
GUIDANCE_BURST_PER_S = 5.0

CENT = Decimal("0.01")
_HUNDRED = Decimal(100)
_THOUSAND = Decimal(1000)


@dataclass(frozen=True, slots=True)
class CostPolicy:
    """The cost-policy block's values as plain data (tasks never load blocks)."""

    daily_request_limit: int = 100_000
    hourly_request_limit: int = 20_000
    monthly_budget_usd: Decimal = Decimal("10000.00")
    cost_per_1000_requests: Decimal = Decimal("0.005")
    warning_percent: Decimal = Decimal(70)
    critical_percent: Decimal = Decimal(85)
    hourly_spike_percent: Decimal = Decimal(150)
    enable_dynamic_throttling: bool = True
    eia_guidance_override: bool = False


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """The quotas actually enforced: the configured ones, capped by EIA's guidance unless overridden."""

    hourly: int
    daily: int
    hourly_capped: bool
    daily_capped: bool


def effective_limits(policy: CostPolicy) -> EffectiveLimits:
    if policy.eia_guidance_override:
        return EffectiveLimits(policy.hourly_request_limit, policy.daily_request_limit, False, False)
    hourly = min(policy.hourly_request_limit, GUIDANCE_HOURLY_REQUESTS)
    daily = min(policy.daily_request_limit, GUIDANCE_DAILY_REQUESTS)
    return EffectiveLimits(hourly, daily, hourly < policy.hourly_request_limit, daily < policy.daily_request_limit)


def to_cents(amount: Decimal) -> Decimal:
    """Rounded to the cent, halves away from zero (0.345 → 0.35), as money is shown and stored."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def spend_usd(requests: int, cost_per_1000: Decimal) -> Decimal:
    """Exact charge-back for a number of requests (not rounded)."""
    return Decimal(requests) * cost_per_1000 / _THOUSAND


def percent(part: Decimal, whole: Decimal) -> Decimal:
    """part as a percentage of whole, exact (not rounded); whole must be positive."""
    if whole <= 0:
        raise ValueError("the whole of a percentage must be positive")
    return part * _HUNDRED / whole


def state_of(value_percent: Decimal, warning_percent: Decimal, critical_percent: Decimal) -> State:
    """ok below the warning threshold; warning from it (70.00% is a warning); critical from critical."""
    if value_percent >= critical_percent:
        return "critical"
    if value_percent >= warning_percent:
        return "warning"
    return "ok"


def worst(*states: State) -> State:
    return max(states, key=STATES.index)


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month holding `now`: [start, end)."""
    utc = now.astimezone(UTC)
    start = datetime(utc.year, utc.month, 1, tzinfo=UTC)
    end = datetime(utc.year + (utc.month == 12), utc.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The UTC day holding `now`: [start, end)."""
    utc = now.astimezone(UTC)
    start = datetime(utc.year, utc.month, utc.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def hour_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The UTC hour holding `now`: [start, end)."""
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start, start + timedelta(hours=1)


def iso_utc(when: datetime) -> str:
    """An instant as the cost controls show it: UTC, to the second (2026-03-10T19:00:00Z)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def elapsed_fraction(now: datetime) -> Decimal:
    """The part of the UTC month already past at `now`, exact (microsecond resolution)."""
    start, end = month_bounds(now)
    micro = timedelta(microseconds=1)
    return Decimal((now.astimezone(UTC) - start) // micro) / Decimal((end - start) // micro)


def projected_spend(spend: Decimal, now: datetime) -> Decimal:
    """Month-end spend if the month goes on as it went so far (linear in the elapsed fraction)."""
    fraction = elapsed_fraction(now)
    return spend if fraction == 0 else spend / fraction


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    month_start: datetime
    month_end: datetime
    requests: int
    spend_exact_usd: Decimal
    spend_usd: Decimal  # to the cent
    projected_usd: Decimal  # to the cent
    budget_usd: Decimal
    percent_of_budget: Decimal  # to 0.01, from the exact spend
    projected_percent_of_budget: Decimal
    elapsed_fraction: Decimal
    state: State  # month-to-date spend against the warning/critical thresholds


def budget_snapshot(month_requests: int, policy: CostPolicy, now: datetime) -> BudgetSnapshot:
    """Spend to date, projection, percent of budget and state for a month's request count."""
    start, end = month_bounds(now)
    spend = spend_usd(month_requests, policy.cost_per_1000_requests)
    projected = projected_spend(spend, now)
    used = percent(spend, policy.monthly_budget_usd)
    return BudgetSnapshot(
        month_start=start,
        month_end=end,
        requests=month_requests,
        spend_exact_usd=spend,
        spend_usd=to_cents(spend),
        projected_usd=to_cents(projected),
        budget_usd=to_cents(policy.monthly_budget_usd),
        percent_of_budget=to_cents(used),
        projected_percent_of_budget=to_cents(percent(projected, policy.monthly_budget_usd)),
        elapsed_fraction=elapsed_fraction(now),
        state=state_of(used, policy.warning_percent, policy.critical_percent),
    )


@dataclass(frozen=True, slots=True)
class Spike:
    this_hour: int
    trailing_average: Decimal  # requests per hour over the 24 hours before this one
    ratio_percent: Decimal | None  # None when there is no trailing traffic to compare with
    threshold_percent: Decimal
    firing: bool


def hourly_spike(this_hour: int, trailing_hours: Sequence[int], threshold_percent: Decimal) -> Spike:
    """This hour against the trailing hourly average; fires only strictly above the threshold.

    `trailing_hours` are the 24 complete hours before this one (hours without requests count as 0).
    With no trailing traffic there is nothing to compare with, so no spike.
    """
    if not trailing_hours:
        raise ValueError("hourly_spike needs the trailing hours")
    average = Decimal(sum(trailing_hours)) / Decimal(len(trailing_hours))
    if average == 0:
        return Spike(this_hour, average, None, threshold_percent, False)
    ratio = percent(Decimal(this_hour), average)
    return Spike(this_hour, average, to_cents(ratio), threshold_percent, ratio > threshold_percent)
