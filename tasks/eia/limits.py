"""Request pacing inside one process: an aiolimiter bucket whose rate adapts to EIA's answers.

Across processes the Prefect global limits (`api_eia` slots, `api_eia_rate` rate) bound EIA
traffic; inside a process this limiter shapes bursts and reacts at once to throttling: after a
429 the rate halves, then recovers by a tenth of the base rate per `recover_after` successes.
"""

from __future__ import annotations

from aiolimiter import AsyncLimiter

SLOT_LIMIT = "api_eia"  # Prefect global concurrency limit: EIA requests in flight (runbook pool, 3 slots)
RATE_LIMIT = "api_eia_rate"  # Prefect global rate limit (slot decay = requests per second)


class AdaptiveLimiter(AsyncLimiter):  # type: ignore[misc]
    def __init__(self, requests_per_second: float, burst: int = 4, *, floor_fraction: float = 1 / 16) -> None:
        super().__init__(max_rate=burst, time_period=burst / requests_per_second)
        self.base_rate = requests_per_second
        self.floor = requests_per_second * floor_fraction
        self.recover_after = 10
        self._successes = 0
        self.throttle_events = 0

    @property
    def rate(self) -> float:
        """Current requests per second."""
        return float(self._rate_per_sec)

    def set_rate(self, requests_per_second: float) -> None:
        rate = max(self.floor, min(self.base_rate, requests_per_second))
        # aiolimiter derives its leak rate from these two; changing both keeps the bucket consistent.
        self.time_period = self.max_rate / rate
        self._rate_per_sec = rate

    def on_throttled(self) -> None:
        self.throttle_events += 1
        self._successes = 0
        self.set_rate(self.rate / 2)

    def on_success(self) -> None:
        if self.rate >= self.base_rate:
            return
        self._successes += 1
        if self._successes >= self.recover_after:
            self._successes = 0
            self.set_rate(self.rate + self.base_rate / 10)
