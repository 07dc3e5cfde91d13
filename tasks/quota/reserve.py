"""The quota reservation: one unit of the hourly and the daily quota, taken before each EIA request.

Why it exists: every worker and pod shares one truth in PostgreSQL (`eia_usage_ledger`, one row per
tenant and UTC hour), so quotas hold across parallel workers and restarts. One SQL statement
(`eia_reserve_request`, sql/common/0004) takes the unit atomically under a per-tenant advisory lock,
or refuses it, and then nothing is sent (`QuotaExhausted`, naming the quota and when it resets).
Without the ledger no request is sent at all (`LedgerUnavailable`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow

from tasks.core.errors import EiaError, QuotaExhausted
from tasks.quota.budget import EffectiveLimits, day_bounds

_RESERVE_SQL: Final = "SELECT granted, bucket, hour_used, day_used, checked_at FROM eia_reserve_request(%s, %s, %s, %s)"
RESERVATION_LOCK_CLASS: Final = 1847197700  # the advisory-lock class of eia_reserve_request (sql/common/0004)


class LedgerUnavailable(EiaError):
    """The usage ledger's database cannot be reached: no request is sent without a reservation."""

    kind = "ledger"


def _iso_minute(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def quota_message(quota: str, limit: int, used: int, resets_at: datetime) -> str:
    return (
        f"{quota} quota of {limit} requests exhausted: {used} used; resets at {_iso_minute(resets_at)} "
        "(`eia quota status` shows usage; `eia quota reset --hour|--day` resets it)"
    )


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
