"""Dynamic throttling: past the warning threshold of the daily quota, spread what is left of it.

Why it exists: a run that has used most of the day's quota should slow down rather than stop at the
limit hours before midnight. The rule is one pure function of the policy, the day's usage and `now`:
the usage ledger's writer applies it to the client's limiter after each reservation, and
`quota_status` reports it, so what a worker does and what `eia quota status` says cannot differ.
The rate each worker runs at is kept in `eia_rate_state` (rows refreshed while it sends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from tasks.eia.limits import quota_spread_rate
from tasks.quota.budget import CostPolicy, EffectiveLimits, day_bounds

RATE_LIVE_S: Final = 120  # a worker's rate row counts as current this long after its last refresh
RATE_REFRESH_S: Final = 30.0  # a sending worker rewrites its unchanged rate row this often


@dataclass(frozen=True, slots=True)
class QuotaSpread:
    """The cap on the request rate that spends the rest of the daily quota evenly until 00:00 UTC."""

    rate_per_s: float
    remaining: int  # requests left of the daily quota (never negative)
    seconds_left: float  # of the UTC day


def quota_spread(policy: CostPolicy, limits: EffectiveLimits, day_used: int, now: datetime) -> QuotaSpread | None:
    """The dynamic-throttling cap at `now` with `day_used` requests counted today.

    None below the warning threshold of the daily quota, or when the policy turns throttling off.
    """
    threshold = Decimal(limits.daily) * policy.warning_percent / 100
    if not policy.enable_dynamic_throttling or day_used < threshold:
        return None
    seconds_left = (day_bounds(now)[1] - now).total_seconds()
    remaining = max(0, limits.daily - day_used)
    return QuotaSpread(quota_spread_rate(remaining, seconds_left), remaining, seconds_left)
