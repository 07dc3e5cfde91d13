"""The usage ledger's write path: what each EIA request cost, recorded without slowing the answer.

Why it exists: costs and metrics must add up across every worker and pod, so each request is counted
in PostgreSQL (`eia_usage_ledger`, one row per tenant and UTC hour). `UsageLedger` is the client's
pair of hooks for one tenant:
- `reserve` (before each send) takes the quota unit (`tasks.quota.reserve`) and applies dynamic
  throttling (`tasks.quota.throttle`) to the client's limiter;
- `record` (after each send) adds the request's status class, error kind, retry, bytes and latency
  histogram (the columns of `tasks.store.usage`), written by a background task on the ledger's own
  connection, so the event loop never waits for the database on the answer path. The same task
  keeps this worker's rate row in `eia_rate_state`, and turns a 429 into the global back-off.
Shared rate (issue 17): each reservation also beats this worker's heartbeat and reads the global
factor and the live workers, so the limiter runs at this worker's share of the global rate
(`tasks.quota.throttle`): N workers together send what one would, and a 429 seen by one slows all.
The read side is `tasks.quota.status`; resets are `tasks.quota.reset`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from tasks.eia.client import RequestRecord
from tasks.eia.limits import RATE_BURST, RATE_LIMIT, RATE_PER_SECOND, AdaptiveLimiter
from tasks.quota.budget import GUIDANCE_BURST_PER_S, CostPolicy, effective_limits, hour_bounds
from tasks.quota.reserve import LedgerUnavailable, Reservation, reserve_request
from tasks.quota.throttle import (
    BACKOFF_SQL,
    BACKOFF_WINDOW_S,
    FACTOR_FLOOR,
    RATE_LIVE_S,
    RATE_REFRESH_S,
    RECOVERY_STEP_S,
    SHARE_SQL,
    quota_spread,
    worker_share,
)
from tasks.store.tables import RATE_STATE, USAGE_LEDGER
from tasks.store.usage import (
    COUNTER_COLUMNS,
    HISTOGRAM_BOUNDS,
    LE_COLUMNS,
    OTHER_KIND,
    error_kind,
    status_class,
)

logger = logging.getLogger(__name__)


def record_deltas(record: RequestRecord) -> Counter[str]:
    """The ledger counters one answered (or failed) request adds."""
    delta: Counter[str] = Counter()
    delta[f"requests_{status_class(record.status)}"] += 1
    if record.error_kind is not None:
        delta[f"errors_{error_kind(record.error_kind)}"] += 1
    elif record.status is None:
        delta[f"errors_{OTHER_KIND}"] += 1  # no answer and no classification (e.g. cancelled mid-request)
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
        recovery_step_s: float = RECOVERY_STEP_S,
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
        self._recovery_step_s = recovery_step_s
        self.factor = 1.0  # the global back-off factor at the last reservation
        self.workers = 1  # live workers at the last reservation, this one included
        self.share: float | None = None  # this worker's share of the global rate (None: not watching)
        self._backoff_pending = False
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
                "Prefect rate limit %r (`eia init`: %g/s, burst %d) keeps it inside",
                limiter.base_rate,
                GUIDANCE_BURST_PER_S,
                RATE_LIMIT,
                RATE_PER_SECOND,
                RATE_BURST,
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
        if self._limiter is not None:
            await self._read_share(conn)
        self._throttle(reservation)

    def record(self, record: RequestRecord) -> None:
        """The client's `on_request` hook: never waits for the database (a background task writes)."""
        bucket = _reserved_bucket.get()
        if bucket is None:
            bucket = hour_bounds(self._clock() if self._clock is not None else datetime.now(UTC))[0]
        with self._pending_lock:
            self._pending.add(bucket, record_deltas(record), record.duration_s)
            if record.throttled:
                self._backoff_pending = True  # the writer halves the global factor for every worker
        self._poke()

    def _poke(self) -> None:
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- dynamic throttling --

    async def _read_share(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        """Beats this worker's heartbeat; reads the global factor and the live workers (one statement)."""
        limiter = self._limiter
        assert limiter is not None
        try:
            cur = await conn.execute(
                SHARE_SQL,
                {
                    "tenant": self.tenant_id,
                    "worker": self.worker,
                    "rate": limiter.rate,
                    "base": limiter.base_rate,
                    "ceiling": limiter.ceiling,
                    "reason": self._rate_row[3] if self._rate_row else "base",
                    "live_s": RATE_LIVE_S,
                    "step_s": self._recovery_step_s,
                },
            )
            row = await cur.fetchone()
        except psycopg.Error as exc:
            # The reservation itself succeeded: keep the last known share rather than fail the request.
            logger.warning("usage ledger: could not read the shared rate (%s); keeping %.3g/s", exc, limiter.rate)
            return
        if row is not None:
            self.factor, self.workers = float(row[0]), int(row[1])

    def _throttle(self, reservation: Reservation) -> None:
        limiter = self._limiter
        if limiter is None:
            return
        spread = quota_spread(self.policy, self.limits, reservation.day_used, reservation.checked_at)
        share = worker_share(limiter.base_rate, spread, self.factor, self.workers)
        self.share = share
        if spread is not None or share < limiter.base_rate * (1 - 1e-9):
            limiter.set_ceiling(share)
        elif limiter.ceiling is not None:
            limiter.set_ceiling(None)
        if spread is not None and not self._spreading:
            self._spreading = True
            logger.warning(
                "daily quota past %s%% (%d of %d used): request rate lowered to %.3g/s (this worker's share, "
                "%d live) to spread the remaining %d requests over the %.1f h left of the UTC day",
                self.policy.warning_percent,
                reservation.day_used,
                self.limits.daily,
                limiter.rate,
                self.workers,
                spread.remaining,
                spread.seconds_left / 3600,
            )
        elif spread is None:
            self._spreading = False
        # Why the rate is what it is; a share of the base among live workers is still "base".
        if self.factor < 1 or limiter.reason == "throttled":
            reason = "throttled"
        else:
            reason = "quota_spread" if spread is not None else "base"
        row = (limiter.rate, limiter.base_rate, limiter.ceiling, reason)
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
                columns = [c for c in COUNTER_COLUMNS if delta.get(c)]
                await conn.execute(
                    _upsert_sql(columns),
                    (self.tenant_id, bucket, *(delta[c] for c in columns), pending.latency.get(bucket, 0.0)),
                )
            pending = _Pending()
            await self._back_off(conn)
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

    async def _back_off(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        """Halves the global factor after a 429 this worker saw (every worker slows at its next request)."""
        with self._pending_lock:
            if not self._backoff_pending:
                return
            self._backoff_pending = False
        try:
            cur = await conn.execute(
                BACKOFF_SQL,
                {
                    "tenant": self.tenant_id,
                    "window_s": BACKOFF_WINDOW_S,
                    "floor": FACTOR_FLOOR,
                    "step_s": self._recovery_step_s,
                },
            )
            row = await cur.fetchone()
        except psycopg.Error:
            with self._pending_lock:
                self._backoff_pending = True  # retried with the next write
            raise
        if row is not None:
            self.factor = min(self.factor, float(row[0]))
            logger.warning("EIA throttled a request: the shared rate factor is %.3g for every worker", self.factor)

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
