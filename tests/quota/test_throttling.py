"""Dynamic throttling against the stand-in: the measured request rate follows the quota and 429s."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from tasks.eia.client import EiaClient, RequestRecord
from tasks.eia.limits import AdaptiveLimiter
from tasks.quota.budget import CostPolicy, effective_limits
from tasks.quota.ledger import UsageLedger
from tasks.quota.status import quota_status
from tasks.quota.throttle import QuotaSpread, quota_spread
from tasks.standin.server import EiaReplayServer
from tests.quota.conftest import TENANT, client_settings, insert_history, ledger_sum, one_request


def measured_rate(stamps: list[float]) -> float:
    """Requests per second between the first and the last of these send times."""
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


class Clock:
    """Real time, shifted to start at `start`: the UTC day's end comes within seconds."""

    def __init__(self, start: datetime) -> None:
        self.start, self.t0 = start, time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.t0)


async def test_past_the_warning_threshold_the_rate_spreads_the_remaining_daily_quota(
    db: str, served: EiaReplayServer
) -> None:
    clock = Clock(datetime(2026, 3, 10, 23, 59, 15, tzinfo=UTC))  # 45 s left in the UTC day
    policy = CostPolicy(daily_request_limit=1_000, hourly_request_limit=1_000, warning_percent=Decimal(70))
    path, params = one_request()
    sent: list[float] = []

    def on_request(record: RequestRecord) -> None:
        sent.append(time.monotonic() - record.duration_s)
        ledger.record(record)

    ledger = UsageLedger(db, TENANT, policy, clock=clock)
    async with (
        ledger,
        EiaClient(client_settings(served, rate=20.0, burst=1), reserve=ledger.reserve, on_request=on_request) as client,
    ):
        ledger.watch(client.limiter)
        for _ in range(16):  # below the threshold: the base rate
            await client.get_json(path, params)
        below, base = sent[:], client.limiter.rate

        insert_history(db, {datetime(2026, 3, 10, 12, tzinfo=UTC): 800 - 16})  # now 800 of 1,000: past 70%
        sent.clear()
        for _ in range(12):
            await client.get_json(path, params)
        after = client.limiter.rate
        await ledger.flush()
        with psycopg.connect(db) as conn:
            status = quota_status(conn, TENANT, policy, clock())
        left = (datetime(2026, 3, 11, tzinfo=UTC) - status.as_of).total_seconds()

    assert base == 20.0
    assert measured_rate(below[1:]) == pytest.approx(20.0, rel=0.2)
    expected = 200 / 45  # 200 requests left over the 45 s left: about 4.4/s
    assert measured_rate(sent[1:]) == pytest.approx(expected, rel=0.2)
    assert after == pytest.approx(188 / left, rel=0.01)  # 188 left after the last reservation
    assert status.rate.throttling_active and status.rate.workers == 1
    assert status.rate.current_per_s == pytest.approx(after)
    assert status.rate.quota_spread_per_s == pytest.approx(188 / left, rel=0.01)
    assert ledger_sum(db, "requests") == 812


async def test_after_a_429_burst_the_rate_halves_and_then_recovers(db: str, served: EiaReplayServer) -> None:
    served.faults.burst_429 = 3
    served.faults.retry_after_s = 0
    path, params = one_request()
    rates: list[float] = []
    sent: list[tuple[float, int | None]] = []

    def on_request(record: RequestRecord) -> None:
        sent.append((time.monotonic() - record.duration_s, record.status))
        rates.append(client.limiter.rate)
        ledger.record(record)

    # The shared back-off factor (tests/quota/test_shared_rate.py) recovers within milliseconds here, so
    # what this shows is the worker's own limiter: halved per 429, recovering per success.
    ledger = UsageLedger(db, TENANT, CostPolicy(), recovery_step_s=0.001)
    async with (
        ledger,
        EiaClient(client_settings(served, rate=40.0, burst=1), reserve=ledger.reserve, on_request=on_request) as client,
    ):
        ledger.watch(client.limiter)
        await client.get_json(path, params)  # 429, 429, 429, then 200
        halved = client.limiter.rate
        for _ in range(95):
            await client.get_json(path, params)
        recovered = client.limiter.rate
        limiter: AdaptiveLimiter = client.limiter

    # Each 429 halves the rate: 40 → 20 → 10 → 5 (the rate seen when each answer arrives).
    assert [s for _, s in sent[:4]] == [429, 429, 429, 200]
    assert halved == 5.0 and limiter.throttle_events == 3
    # Then +4/s (a tenth of the base) every 10 successes, back to 40/s after 90.
    steps = sorted(set(rates[3:]))
    assert steps == [5.0, 9.0, 13.0, 17.0, 21.0, 25.0, 29.0, 33.0, 37.0, 40.0]
    assert recovered == 40.0
    first_ten = [t for t, _ in sent[3:13]]
    last_ten = [t for t, _ in sent[-10:]]
    assert measured_rate(first_ten) == pytest.approx(5.0, rel=0.2)
    assert measured_rate(last_ten) > 4 * measured_rate(first_ten)
    # The same request sent again and again: every send after the first is a re-send.
    assert ledger_sum(db, "errors_rate_limited") == 3 and ledger_sum(db, "retries") == 98


def test_the_spread_starts_at_the_warning_threshold_and_spends_what_is_left_until_midnight() -> None:
    policy = CostPolicy(daily_request_limit=1_000, hourly_request_limit=1_000, warning_percent=Decimal(70))
    limits = effective_limits(policy)
    at = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # one hour left in the UTC day

    assert quota_spread(policy, limits, 699, at) is None
    assert quota_spread(policy, limits, 700, at) == QuotaSpread(300 / 3600, 300, 3600.0)
    assert quota_spread(policy, limits, 1_000, at) == QuotaSpread(0.0, 0, 3600.0)
    off = CostPolicy(daily_request_limit=1_000, enable_dynamic_throttling=False)
    assert quota_spread(off, effective_limits(off), 999, at) is None
