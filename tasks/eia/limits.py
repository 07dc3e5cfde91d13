"""Request pacing inside one process: an aiolimiter bucket whose rate adapts to EIA's answers.

Across processes the Prefect global limits (`api_eia` slots, `api_eia_rate` rate: burst 2, 2/s, set
by `eia init`) bound EIA traffic; inside a process this limiter, by default the same burst and rate,
shapes bursts and reacts at once to throttling: after a 429 the rate halves, then recovers by a
tenth of the base rate per `recover_after` successes.
Dynamic throttling (cost controls) sets a ceiling below the base rate: past the warning threshold of
the daily quota the remaining requests are spread over the rest of the UTC day.
"""

from __future__ import annotations

from aiolimiter import AsyncLimiter

SLOT_LIMIT = "api_eia"  # Prefect global concurrency limit: EIA requests in flight (API_SLOTS of them)
RATE_LIMIT = "api_eia_rate"  # Prefect global rate limit (slot decay = requests per second)
API_SLOTS = 3  # the runbook's api_eia pool
# `api_eia_rate`, shared by every process: each request takes a slot that decays at RATE_PER_SECOND.
# Prefect admits a full burst at once and decays whole slots (floor(rate * seconds since the limit's
# last update)), so any L seconds admit at most RATE_BURST + floor(RATE_PER_SECOND * L): 3 in one
# second, 4 in any window under 1.5 s. Request starts stay within EIA's burst guidance (< 5/s) even
# when admission-to-start delays differ by up to 0.5 s; sustained, at most 2/s = 7,200/h (< 9,000/h).
# README, "Rate arithmetic".
RATE_BURST = 2
RATE_PER_SECOND = 2.0  # whole: with 2.5, floor() lets one second admit burst + 2 (the old 4 + 2 = 6)
MIN_RATE = 1e-3  # requests/s: the lowest ceiling (aiolimiter divides by the rate)


class AdaptiveLimiter(AsyncLimiter):  # type: ignore[misc]
    def __init__(self, requests_per_second: float, burst: int = RATE_BURST, *, floor_fraction: float = 1 / 16) -> None:
        super().__init__(max_rate=burst, time_period=burst / requests_per_second)
        self.base_rate = requests_per_second
        self.floor = requests_per_second * floor_fraction
        self.recover_after = 10
        self._successes = 0
        self.throttle_events = 0
        self.ceiling: float | None = None  # dynamic throttling; None = the base rate is the ceiling

    @property
    def rate(self) -> float:
        """Current requests per second."""
        return float(self._rate_per_sec)

    @property
    def max_allowed(self) -> float:
        """The highest rate allowed now: the base rate, or the dynamic-throttling ceiling below it."""
        # The ceiling wins over the floor: the floor bounds the 429 back-off, while a ceiling below it is
        # this worker's share of the quota spread, which all workers together must not exceed.
        return self.base_rate if self.ceiling is None else max(MIN_RATE, min(self.base_rate, self.ceiling))

    def set_ceiling(self, requests_per_second: float | None) -> None:
        """Caps the rate (below the floor too: a worker's share of the spread may be lower); None lifts it.

        A rate running at the old cap follows the new one up or down; a rate still recovering from
        a 429 is only capped, and keeps recovering gradually.
        """
        at_cap = self.rate >= self.max_allowed * (1 - 1e-9)
        self.ceiling = requests_per_second
        if at_cap or self.rate > self.max_allowed:
            self.set_rate(self.max_allowed)

    @property
    def reason(self) -> str:
        """Why the rate is what it is: base, quota_spread (dynamic throttling) or throttled (after a 429)."""
        if self.rate < self.max_allowed * (1 - 1e-9):
            return "throttled"
        return "quota_spread" if self.max_allowed < self.base_rate else "base"

    def set_rate(self, requests_per_second: float) -> None:
        rate = min(self.max_allowed, max(self.floor, requests_per_second))
        # aiolimiter derives its leak rate from these two; changing both keeps the bucket consistent.
        self.time_period = self.max_rate / rate
        self._rate_per_sec = rate

    def on_throttled(self) -> None:
        self.throttle_events += 1
        self._successes = 0
        self.set_rate(self.rate / 2)

    def on_success(self) -> None:
        if self.rate >= self.max_allowed:
            return
        self._successes += 1
        if self._successes >= self.recover_after:
            self._successes = 0
            self.set_rate(self.rate + self.base_rate / 10)


def quota_spread_rate(remaining: int, seconds_left: float) -> float:
    """Requests per second that spend `remaining` requests evenly over `seconds_left` seconds."""
    return max(0, remaining) / max(seconds_left, 1.0)
