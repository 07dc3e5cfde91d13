"""The durable usage ledger: quota reservations before each EIA request, and what each request cost.

Every worker and pod shares one truth in PostgreSQL (`eia_usage_ledger`, one row per tenant and
UTC hour), so quotas hold across parallel workers and restarts, and costs and metrics add up:
- `UsageLedger.reserve` is the client's `reserve` hook: one SQL statement takes a unit of the hourly
  and the daily quota atomically, or refuses and nothing is sent (`QuotaExhausted`);
- `UsageLedger.record` is the client's `on_request` hook: status class, error kind, retry, bytes and
  a latency histogram, written by a background task on the ledger's own connection so the event
  loop never waits for the database on the answer path;
- dynamic throttling: past the warning threshold of the daily quota, the client's rate is capped so
  the remaining quota spreads over the rest of the UTC day; the rate each worker runs at is kept in
  `eia_rate_state`.
`ledger_totals` and `quota_status` are the read side for `eia quota status`, the cost-monitoring
flow and the metrics collector.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from tasks.core.errors import EiaError, QuotaExhausted
from tasks.eia.client import RequestRecord
from tasks.eia.limits import RATE_LIMIT, AdaptiveLimiter, quota_spread_rate
from tasks.quota.budget import (
    GUIDANCE_BURST_PER_S,
    GUIDANCE_DAILY_REQUESTS,
    GUIDANCE_HOURLY_REQUESTS,
    BudgetSnapshot,
    CostPolicy,
    EffectiveLimits,
    Spike,
    State,
    budget_snapshot,
    day_bounds,
    effective_limits,
    hour_bounds,
    hourly_spike,
    month_bounds,
    percent,
    state_of,
    to_cents,
    worst,
)
from tasks.store.tables import AUDIT_LOG, RATE_STATE, USAGE_LEDGER

logger = logging.getLogger(__name__)

# Prometheus buckets (seconds) of `eia_request_duration_seconds`; +Inf is latency_count.
HISTOGRAM_BOUNDS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
STATUS_CLASSES: tuple[str, ...] = ("2xx", "3xx", "4xx", "5xx", "no_status")
ERROR_KINDS: tuple[str, ...] = (
    "server_error",
    "timeout",
    "malformed",
    "rate_limited",
    "auth",
    "not_found",
    "client_error",
    "other",
)
RATE_LIVE_S = 120  # a worker's rate row counts as current this long after its last refresh
RATE_REFRESH_S = 30.0
_RESERVE_SQL = "SELECT granted, bucket, hour_used, day_used, checked_at FROM eia_reserve_request(%s, %s, %s, %s)"
_LOCK_CLASS = 1847197700  # the advisory-lock class of eia_reserve_request (sql/common/0004)


def le_column(bound: float) -> str:
    """The ledger column of one histogram bucket: 0.25 → latency_le_0_25, 60 → latency_le_60."""
    return "latency_le_" + format(bound, "g").replace(".", "_")


LE_COLUMNS: tuple[str, ...] = tuple(le_column(b) for b in HISTOGRAM_BOUNDS)
_COUNTER_COLUMNS: tuple[str, ...] = (
    *(f"requests_{c}" for c in STATUS_CLASSES),
    *(f"errors_{k}" for k in ERROR_KINDS),
    "retries",
    "bytes",
    "latency_count",
    *LE_COLUMNS,
)


class LedgerUnavailable(EiaError):
    """The usage ledger's database cannot be reached: no request is sent without a reservation."""

    kind = "ledger"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_minute(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def quota_message(quota: str, limit: int, used: int, resets_at: datetime) -> str:
    return (
        f"{quota} quota of {limit} requests exhausted: {used} used; resets at {_iso_minute(resets_at)} "
        "(`eia quota status` shows usage; `eia quota reset --hour|--day` resets it)"
    )


# -- reservation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reservation:
    granted: bool
    bucket: datetime  # the UTC hour the request was counted in
    hour_used: int  # including this request when granted
    day_used: int
    checked_at: datetime

    def refusal(self, limits: EffectiveLimits) -> QuotaExhausted:
        if self.hour_used >= limits.hourly:
            quota, limit, used, resets = "hourly", limits.hourly, self.hour_used, self.bucket + timedelta(hours=1)
        else:
            quota, limit, used = "daily", limits.daily, self.day_used
            resets = day_bounds(self.checked_at)[1]
        return QuotaExhausted(
            quota_message(quota, limit, used, resets), quota=quota, limit=limit, used=used, resets_at=resets
        )


def _reservation(row: tuple[Any, ...] | None) -> Reservation:
    if row is None:
        raise LedgerUnavailable("the usage ledger returned no reservation (is migration 0004 applied?)")
    return Reservation(bool(row[0]), row[1], int(row[2]), int(row[3]), row[4])


async def reserve_request(
    conn: psycopg.AsyncConnection[TupleRow], tenant_id: str, limits: EffectiveLimits, now: datetime | None = None
) -> Reservation:
    """One statement: takes a unit of the hourly and daily quota if both allow it (autocommit conn)."""
    cur = await conn.execute(_RESERVE_SQL, (tenant_id, limits.hourly, limits.daily, now))
    return _reservation(await cur.fetchone())


def reserve_request_sync(
    conn: psycopg.Connection[TupleRow], tenant_id: str, limits: EffectiveLimits, now: datetime | None = None
) -> Reservation:
    """The same reservation on a synchronous (autocommit) connection."""
    return _reservation(conn.execute(_RESERVE_SQL, (tenant_id, limits.hourly, limits.daily, now)).fetchone())


# -- what a request cost -----------------------------------------------------------------------


def status_class(status: int | None) -> str:
    if status is None:
        return "no_status"
    if 200 <= status < 300:
        return "2xx"
    if 400 <= status < 500:
        return "4xx"
    if status >= 500:
        return "5xx"
    return "3xx"  # 1xx never reaches us as a final answer; 3xx is not followed


def record_deltas(record: RequestRecord) -> Counter[str]:
    """The ledger counters one answered (or failed) request adds."""
    delta: Counter[str] = Counter()
    delta[f"requests_{status_class(record.status)}"] += 1
    if record.error_kind is not None:
        kind = record.error_kind if record.error_kind in ERROR_KINDS else "other"
        delta[f"errors_{kind}"] += 1
    elif record.status is None:
        delta["errors_other"] += 1  # no answer and no classification (e.g. cancelled mid-request)
    if record.retry:
        delta["retries"] += 1
    delta["bytes"] += record.bytes
    delta["latency_count"] += 1
    for bound, column in zip(HISTOGRAM_BOUNDS, LE_COLUMNS, strict=True):
        if record.duration_s <= bound:
            delta[column] += 1
    return delta


@dataclass(slots=True)
class _Pending:
    counters: dict[datetime, Counter[str]] = field(default_factory=dict)
    latency: dict[datetime, float] = field(default_factory=dict)

    def add(self, bucket: datetime, delta: Counter[str], latency_s: float) -> None:
        self.counters.setdefault(bucket, Counter()).update(delta)
        self.latency[bucket] = self.latency.get(bucket, 0.0) + latency_s

    def merge(self, other: _Pending) -> None:
        for bucket, delta in other.counters.items():
            self.add(bucket, delta, other.latency.get(bucket, 0.0))

    def __bool__(self) -> bool:
        return bool(self.counters)


def _upsert_sql(columns: list[str]) -> str:
    names = ", ".join(columns)
    holders = ", ".join(["%s"] * len(columns))
    updates = ", ".join(f"{c} = l.{c} + EXCLUDED.{c}" for c in [*columns, "latency_sum_s"])
    return (
        f"INSERT INTO {USAGE_LEDGER} AS l (tenant_id, hour_bucket, {names}, latency_sum_s) "
        f"VALUES (%s, %s, {holders}, %s) "
        f"ON CONFLICT (tenant_id, hour_bucket) DO UPDATE SET {updates}, updated_at = now()"
    )


# The hour a request was reserved in, so its answer is counted in the same row even when it
# arrives after the hour turned (reserve and record run in the same asyncio task).
_reserved_bucket: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("eia_reserved_bucket", default=None)


class UsageLedger:
    """The client's quota and usage hooks for one tenant; use `async with UsageLedger(...) as ledger`.

    `clock` (tests, back-fills) replaces the database clock for choosing the hour and the day.
    """

    def __init__(
        self,
        dsn: str,
        tenant_id: str,
        policy: CostPolicy,
        *,
        clock: Any = None,
        flush_interval_s: float = 0.2,
        worker: str | None = None,
    ) -> None:
        self.dsn = dsn
        self.tenant_id = tenant_id
        self.policy = policy
        self.limits = effective_limits(policy)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.reserved = 0
        self.refused = 0
        self._clock = clock
        self._flush_interval_s = flush_interval_s
        self._conn: psycopg.AsyncConnection[TupleRow] | None = None
        self._pending = _Pending()
        self._pending_lock = threading.Lock()
        self._rate_row: tuple[float, float, float | None, str] | None = None
        self._rate_written: tuple[tuple[float, float, float | None, str], float] | None = None
        self._limiter: AdaptiveLimiter | None = None
        self._spreading = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._closing = False
        self._writer: asyncio.Task[None] | None = None

    # -- lifecycle --

    async def __aenter__(self) -> UsageLedger:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._closing = False
        await self._connection()
        self._writer = asyncio.create_task(self._write_loop(), name="eia-usage-ledger-writer")

    async def close(self) -> None:
        """Writes everything recorded so far, removes this worker's rate row, closes the connection."""
        if self._writer is not None and self._wake is not None:
            self._closing = True
            self._wake.set()
            await self._writer
            self._writer = None
            await self.flush()  # what was recorded while the writer's last write was under way
        if self._conn is not None:
            try:
                await self._conn.execute(
                    f"DELETE FROM {RATE_STATE} WHERE tenant_id = %s AND worker = %s", (self.tenant_id, self.worker)
                )
            except psycopg.Error as exc:
                logger.warning("usage ledger: could not remove the rate row of %s: %s", self.worker, exc)
            await self._conn.close()
            self._conn = None

    async def _connection(self) -> psycopg.AsyncConnection[TupleRow]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, application_name="eia-usage-ledger"
                )
            except psycopg.OperationalError:
                raise LedgerUnavailable(
                    "the usage ledger's database cannot be reached (setting EIA_DATABASE_URL / block "
                    "'eia-database'); no EIA request is sent without a quota reservation"
                ) from None
        return self._conn

    def watch(self, limiter: AdaptiveLimiter) -> None:
        """Applies dynamic throttling and publishes the rate of this client's limiter."""
        self._limiter = limiter
        if limiter.base_rate >= GUIDANCE_BURST_PER_S and not self.policy.eia_guidance_override:
            # Across processes the Prefect rate limit is what holds EIA's guidance; say so once.
            logger.warning(
                "the client's rate of %.3g requests/s is not below EIA's %g/s burst guidance; only the "
                "Prefect rate limit %r (`eia init`: 2.5/s, burst 4) keeps it inside",
                limiter.base_rate,
                GUIDANCE_BURST_PER_S,
                RATE_LIMIT,
            )

    # -- the client's hooks --

    def _now(self) -> datetime | None:
        return self._clock() if self._clock is not None else None

    async def reserve(self) -> None:
        """The client's `reserve` hook: raises QuotaExhausted (nothing is sent) when a quota is used up."""
        now = self._now()
        for attempt in (1, 2):
            conn = await self._connection()
            try:
                reservation = await reserve_request(conn, self.tenant_id, self.limits, now)
                break
            except psycopg.OperationalError:
                # A restarted database drops the connection: reconnect once.
                await conn.close()
                self._conn = None
                if attempt == 2:
                    raise LedgerUnavailable(
                        "the usage ledger's database went away; no EIA request is sent without a quota reservation"
                    ) from None
        if not reservation.granted:
            self.refused += 1
            raise reservation.refusal(self.limits)
        self.reserved += 1
        _reserved_bucket.set(reservation.bucket)
        self._throttle(reservation)

    def record(self, record: RequestRecord) -> None:
        """The client's `on_request` hook: never waits for the database (a background task writes)."""
        bucket = _reserved_bucket.get()
        if bucket is None:
            bucket = hour_bounds(self._clock() if self._clock is not None else datetime.now(UTC))[0]
        with self._pending_lock:
            self._pending.add(bucket, record_deltas(record), record.duration_s)
        self._poke()

    def _poke(self) -> None:
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- dynamic throttling --

    def _throttle(self, reservation: Reservation) -> None:
        limiter = self._limiter
        if limiter is None:
            return
        threshold = Decimal(self.limits.daily) * self.policy.warning_percent / 100
        if self.policy.enable_dynamic_throttling and reservation.day_used >= threshold:
            seconds_left = (day_bounds(reservation.checked_at)[1] - reservation.checked_at).total_seconds()
            remaining = self.limits.daily - reservation.day_used
            limiter.set_ceiling(quota_spread_rate(remaining, seconds_left))
            if not self._spreading:
                self._spreading = True
                logger.warning(
                    "daily quota past %s%% (%d of %d used): request rate lowered to %.3g/s to spread the "
                    "remaining %d requests over the %.1f h left of the UTC day",
                    self.policy.warning_percent,
                    reservation.day_used,
                    self.limits.daily,
                    limiter.rate,
                    remaining,
                    seconds_left / 3600,
                )
        elif limiter.ceiling is not None:
            limiter.set_ceiling(None)
            self._spreading = False
        row = (limiter.rate, limiter.base_rate, limiter.ceiling, limiter.reason)
        if row != self._rate_row:
            self._rate_row = row
            self._poke()
        elif (
            self._rate_written is not None
            and self._loop is not None
            and self._loop.time() - self._rate_written[1] > RATE_REFRESH_S
        ):
            self._poke()  # keeps the row fresh while this worker sends

    # -- background writes --

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._closing:
                await asyncio.sleep(self._flush_interval_s)  # one write for a burst of answers
            await self.flush()
            if self._closing:
                return

    async def flush(self) -> None:
        """Writes the counters recorded so far (and this worker's rate); kept for later on failure."""
        with self._pending_lock:
            pending, self._pending = self._pending, _Pending()
        try:
            conn = await self._connection()
            for bucket, delta in pending.counters.items():
                columns = [c for c in _COUNTER_COLUMNS if delta.get(c)]
                await conn.execute(
                    _upsert_sql(columns),
                    (self.tenant_id, bucket, *(delta[c] for c in columns), pending.latency.get(bucket, 0.0)),
                )
            pending = _Pending()
            await self._write_rate(conn)
        except (psycopg.Error, LedgerUnavailable) as exc:
            logger.warning(
                "usage ledger: write failed (%s); %d hour(s) of counts kept for the next write",
                exc,
                len(pending.counters),
            )
            if self._conn is not None and self._conn.broken:
                self._conn = None
        finally:
            if pending:
                with self._pending_lock:
                    pending.merge(self._pending)
                    self._pending = pending

    async def _write_rate(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        row = self._rate_row
        if row is None or self._loop is None:
            return
        now = self._loop.time()
        written = self._rate_written
        if written is not None and written[0] == row and now - written[1] < RATE_REFRESH_S:
            return
        await conn.execute(
            f"""INSERT INTO {RATE_STATE} (tenant_id, worker, rate_per_s, base_rate_per_s, ceiling_per_s, reason)
                VALUES (%s, %s, %s, %s, %s, %s)
                ON CONFLICT (tenant_id, worker) DO UPDATE SET rate_per_s = EXCLUDED.rate_per_s,
                    base_rate_per_s = EXCLUDED.base_rate_per_s, ceiling_per_s = EXCLUDED.ceiling_per_s,
                    reason = EXCLUDED.reason, updated_at = now()""",
            (self.tenant_id, self.worker, *row),
        )
        self._rate_written = (row, now)


# -- read side: totals for the metrics collector -----------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """All-time counters of a tenant (Prometheus counters and the request-duration histogram)."""

    requests: int
    requests_by_status_class: dict[str, int]  # 2xx, 3xx, 4xx, 5xx, no_status
    errors_by_kind: dict[str, int]  # ERROR_KINDS
    retries: int
    bytes: int
    latency_buckets: tuple[tuple[float, int], ...]  # (le, cumulative count); +Inf is latency_count
    latency_sum_s: float
    latency_count: int


def ledger_totals(conn: psycopg.Connection[TupleRow], tenant_id: str) -> LedgerTotals:
    columns = ["requests", *_COUNTER_COLUMNS, "latency_sum_s"]
    row = conn.execute(
        f"SELECT {', '.join(f'coalesce(sum({c}), 0)' for c in columns)} FROM {USAGE_LEDGER} WHERE tenant_id = %s",
        (tenant_id,),
    ).fetchone()
    values = dict(zip(columns, row or [0] * len(columns), strict=True))
    return LedgerTotals(
        requests=int(values["requests"]),
        requests_by_status_class={c: int(values[f"requests_{c}"]) for c in STATUS_CLASSES},
        errors_by_kind={k: int(values[f"errors_{k}"]) for k in ERROR_KINDS},
        retries=int(values["retries"]),
        bytes=int(values["bytes"]),
        latency_buckets=tuple(
            (bound, int(values[column])) for bound, column in zip(HISTOGRAM_BOUNDS, LE_COLUMNS, strict=True)
        ),
        latency_sum_s=float(values["latency_sum_s"]),
        latency_count=int(values["latency_count"]),
    )


# -- read side: quota status ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowUsage:
    """One quota window (the UTC hour or day): usage after resets against the effective limit."""

    start: datetime
    resets_at: datetime
    used: int  # counted against the quota (after `eia quota reset`)
    requests: int  # actually sent in the window (resets do not change it)
    limit: int  # effective
    configured_limit: int
    percent: Decimal  # used / limit, to 0.01
    state: State

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class RateStatus:
    current_per_s: float | None  # sum over workers sending now; None when none is
    workers: int
    quota_spread_per_s: float | None  # the dynamic-throttling cap when past the warning threshold
    throttling_active: bool


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    tenant_id: str
    as_of: datetime
    policy: CostPolicy
    limits: EffectiveLimits
    hour: WindowUsage
    day: WindowUsage
    budget: BudgetSnapshot
    spike: Spike
    rate: RateStatus

    @property
    def state(self) -> State:
        """The worst of the budget state and the daily-quota state."""
        return worst(self.budget.state, self.day.state)

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON shape of `eia quota status --json` (README, Cost controls)."""

        def window(w: WindowUsage) -> dict[str, Any]:
            return {
                "start": _iso(w.start),
                "resets_at": _iso(w.resets_at),
                "used": w.used,
                "requests": w.requests,
                "limit": w.limit,
                "configured_limit": w.configured_limit,
                "remaining": w.remaining,
                "percent": str(w.percent),
                "state": w.state,
            }

        b, s, p = self.budget, self.spike, self.policy
        return {
            "tenant_id": self.tenant_id,
            "as_of": _iso(self.as_of),
            "state": self.state,
            "hour": window(self.hour),
            "day": window(self.day),
            "month": {
                "start": _iso(b.month_start),
                "ends_at": _iso(b.month_end),
                "requests": b.requests,
                "elapsed_percent": str(to_cents(b.elapsed_fraction * 100)),
            },
            "budget": {
                "monthly_budget_usd": str(b.budget_usd),
                "cost_per_1000_requests_usd": str(p.cost_per_1000_requests),
                "spend_usd": str(b.spend_usd),
                "projected_usd": str(b.projected_usd),
                "percent_of_budget": str(b.percent_of_budget),
                "projected_percent_of_budget": str(b.projected_percent_of_budget),
                "state": b.state,
            },
            "spike": {
                "this_hour": s.this_hour,
                "trailing_24h_average": str(to_cents(s.trailing_average)),
                "ratio_percent": None if s.ratio_percent is None else str(s.ratio_percent),
                "threshold_percent": str(s.threshold_percent),
                "firing": s.firing,
            },
            "rate": {
                "current_per_s": self.rate.current_per_s,
                "workers": self.rate.workers,
                "quota_spread_per_s": self.rate.quota_spread_per_s,
                "throttling_active": self.rate.throttling_active,
                "dynamic_throttling": p.enable_dynamic_throttling,
            },
            "policy": {
                "warning_percent": str(p.warning_percent),
                "critical_percent": str(p.critical_percent),
                "hourly_spike_percent": str(p.hourly_spike_percent),
                "eia_guidance_override": p.eia_guidance_override,
                "guidance_hourly_requests": GUIDANCE_HOURLY_REQUESTS,
                "guidance_daily_requests": GUIDANCE_DAILY_REQUESTS,
                "guidance_burst_per_s": GUIDANCE_BURST_PER_S,
            },
        }


def _window(
    start: datetime, end: datetime, used: int, requests: int, limit: int, configured: int, policy: CostPolicy
) -> WindowUsage:
    exact = percent(Decimal(used), Decimal(limit)) if limit > 0 else Decimal(100)
    return WindowUsage(
        start,
        end,
        used,
        requests,
        limit,
        configured,
        to_cents(exact),
        state_of(exact, policy.warning_percent, policy.critical_percent),
    )


def quota_status(conn: psycopg.Connection[TupleRow], tenant_id: str, policy: CostPolicy, now: datetime) -> QuotaStatus:
    """Hour, day and month usage, limits, remaining, rate, spend, projection, state and spike at `now`."""
    limits = effective_limits(policy)
    hour_start, hour_end = hour_bounds(now)
    day_start, day_end = day_bounds(now)
    month_start, month_end = month_bounds(now)
    trailing_start = hour_start - timedelta(hours=24)
    rows = conn.execute(
        f"""SELECT hour_bucket, requests, hour_quota_offset, day_quota_offset FROM {USAGE_LEDGER}
            WHERE tenant_id = %s AND hour_bucket >= %s AND hour_bucket < %s""",
        (tenant_id, min(month_start, trailing_start), max(month_end, hour_end)),
    ).fetchall()
    by_hour = {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}
    this_hour = by_hour.get(hour_start, (0, 0, 0))
    today = [v for h, v in by_hour.items() if day_start <= h < day_end]
    month_requests = sum(v[0] for h, v in by_hour.items() if month_start <= h < month_end and h < hour_end)
    trailing = [by_hour.get(trailing_start + timedelta(hours=i), (0, 0, 0))[0] for i in range(24)]

    hour = _window(
        hour_start,
        hour_end,
        this_hour[0] - this_hour[1],
        this_hour[0],
        limits.hourly,
        policy.hourly_request_limit,
        policy,
    )
    day = _window(
        day_start,
        day_end,
        sum(v[0] - v[2] for v in today),
        sum(v[0] for v in today),
        limits.daily,
        policy.daily_request_limit,
        policy,
    )

    live = conn.execute(
        f"""SELECT coalesce(sum(rate_per_s), 0), count(*) FROM {RATE_STATE}
            WHERE tenant_id = %s AND updated_at > now() - make_interval(secs => %s)""",
        (tenant_id, RATE_LIVE_S),
    ).fetchone()
    workers = int(live[1]) if live else 0
    threshold = Decimal(limits.daily) * policy.warning_percent / 100
    spreading = policy.enable_dynamic_throttling and day.used >= threshold
    spread = quota_spread_rate(day.remaining, (day_end - now).total_seconds()) if spreading else None
    rate = RateStatus(float(live[0]) if live and workers else None, workers, spread, spreading)
    return QuotaStatus(
        tenant_id=tenant_id,
        as_of=now,
        policy=policy,
        limits=limits,
        hour=hour,
        day=day,
        budget=budget_snapshot(month_requests, policy, now),
        spike=hourly_spike(this_hour[0], trailing, policy.hourly_spike_percent),
        rate=rate,
    )


# -- operations: reset and audit ------------------------------------------------------------------


def write_audit(conn: psycopg.Connection[TupleRow], actor: str, action: str, details: dict[str, Any]) -> None:
    conn.execute(
        f"INSERT INTO {AUDIT_LOG} (actor, action, details) VALUES (%s, %s, %s::jsonb)",
        (actor, action, json.dumps(details, default=str)),
    )


@dataclass(frozen=True, slots=True)
class QuotaReset:
    scopes: tuple[str, ...]
    hour_used_before: int
    day_used_before: int
    hour_used_after: int
    day_used_after: int
    at: datetime


def reset_quota(
    conn: psycopg.Connection[TupleRow],
    tenant_id: str,
    *,
    hour: bool,
    day: bool,
    actor: str,
    now: datetime | None = None,
) -> QuotaReset:
    """The runbook's "reset quota tracking": the hour's and/or the day's usage starts again from zero.

    Counts are kept (cost and history stay intact); the quota offsets move up to them. Runs under
    the reservation lock, so no reservation interleaves, and writes the audit log in the same
    transaction.
    """
    scopes = tuple(s for s, on in (("hour", hour), ("day", day)) if on)
    if not scopes:
        raise ValueError("reset what? choose the hour, the day or both")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, tenant_id))
        if now is None:
            clock = conn.execute("SELECT clock_timestamp()").fetchone()
            now = clock[0] if clock else datetime.now(UTC)
        assert now is not None
        hour_start = hour_bounds(now)[0]
        day_start, day_end = day_bounds(now)

        def usage() -> tuple[int, int]:
            row = conn.execute(
                f"""SELECT coalesce(sum(requests - hour_quota_offset) FILTER (WHERE hour_bucket = %s), 0),
                           coalesce(sum(requests - day_quota_offset), 0)
                    FROM {USAGE_LEDGER} WHERE tenant_id = %s AND hour_bucket >= %s AND hour_bucket < %s""",
                (hour_start, tenant_id, day_start, day_end),
            ).fetchone()
            return (int(row[0]), int(row[1])) if row else (0, 0)

        before = usage()
        if hour:
            conn.execute(
                f"""UPDATE {USAGE_LEDGER} SET hour_quota_offset = requests, updated_at = now()
                    WHERE tenant_id = %s AND hour_bucket = %s""",
                (tenant_id, hour_start),
            )
        if day:
            conn.execute(
                f"""UPDATE {USAGE_LEDGER} SET day_quota_offset = requests, updated_at = now()
                    WHERE tenant_id = %s AND hour_bucket >= %s AND hour_bucket < %s""",
                (tenant_id, day_start, day_end),
            )
        after = usage()
        write_audit(
            conn,
            actor,
            "quota.reset",
            {
                "tenant_id": tenant_id,
                "scopes": list(scopes),
                "hour": _iso(hour_start),
                "day": day_start.date().isoformat(),
                "hour_used_before": before[0],
                "day_used_before": before[1],
            },
        )
    return QuotaReset(scopes, before[0], before[1], after[0], after[1], now)
