"""Quota reset, audited: the runbook's "reset quota tracking" (`eia quota reset --hour|--day`).

Why it exists: an operator who raised a limit, or who knows a burst was a mistake, restarts the
hour's or the day's quota from zero without losing history: counts are kept (cost and metrics stay
intact) and per-row quota offsets move up to them. The reset runs under the reservation's advisory
lock and writes the audit log in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.rows import TupleRow

from tasks.quota.budget import day_bounds, hour_bounds, iso_utc
from tasks.quota.reserve import RESERVATION_LOCK_CLASS
from tasks.store.audit import write_audit
from tasks.store.tables import USAGE_LEDGER

AUDIT_ACTION = "quota.reset"


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
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (RESERVATION_LOCK_CLASS, tenant_id))
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
            AUDIT_ACTION,
            {
                "tenant_id": tenant_id,
                "scopes": list(scopes),
                "hour": iso_utc(hour_start),
                "day": day_start.date().isoformat(),
                "hour_used_before": before[0],
                "day_used_before": before[1],
            },
        )
    return QuotaReset(scopes, before[0], before[1], after[0], after[1], now)
