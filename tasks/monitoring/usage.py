"""EIA request counts over a window, as the health checks and the SLA report read them.

Why it exists: error rate, retry rate, success rate, availability and mean latency are all ratios of
the same few counts from the usage ledger. This is that one shape, with the ratios defined once.
Availability counts only failures that say EIA itself was unavailable (5xx, timeouts, connection
errors); success rate counts every request that did not end in a 2xx answer.

The ledger (`0004_usage_ledger.sql`) keeps one row per tenant and UTC hour, so a window is read to
the hour: every hour bucket that starts inside [since, until).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import literal
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlmodel import col, func

from tasks.core.errors import EiaServerError, EiaTimeout
from tasks.store.models import UsageHour
from tasks.store.sessions import borrowed, rows, total
from tasks.store.usage import ERROR_KINDS

if TYPE_CHECKING:  # the window's shape and ratios stay importable without a database client
    import psycopg
    from psycopg.rows import TupleRow

# EIA-side failures (the ledger's `errors_<kind>` columns) count against availability.
UNAVAILABLE_KINDS = (EiaServerError.kind, EiaTimeout.kind)


@dataclass(frozen=True, slots=True)
class RequestWindow:
    requests: int = 0
    succeeded: int = 0  # answered 2xx
    errors: int = 0  # ended in an error of any kind (also 4xx, throttling, malformed bodies)
    unavailable: int = 0  # EIA-side failures: 5xx, timeouts, connection errors
    retries: int = 0
    duration_sum_s: float = 0.0
    duration_count: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def retry_rate(self) -> float | None:
        return self.retries / self.requests if self.requests else None

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.requests if self.requests else None

    @property
    def availability(self) -> float | None:
        return 1 - self.unavailable / self.requests if self.requests else None

    @property
    def mean_duration_s(self) -> float | None:
        return self.duration_sum_s / self.duration_count if self.duration_count else None


def read_request_window(
    conn: psycopg.Connection[TupleRow], tenant_id: str, since: datetime, until: datetime
) -> RequestWindow:
    """Sums the ledger's hour rows whose bucket starts in [date_trunc('hour', since), until)."""
    u = UsageHour
    errors_of = sa_inspect(u).columns  # the `errors_<kind>` columns, by name

    query = sa_select(
        total(col(u.requests)),
        total(col(u.requests_2xx)),
        total(*(errors_of[f"errors_{k}"] for k in ERROR_KINDS)),
        total(*(errors_of[f"errors_{k}"] for k in UNAVAILABLE_KINDS)),
        total(col(u.retries)),
        total(col(u.latency_sum_s)),
        total(col(u.latency_count)),
    ).where(
        col(u.tenant_id) == tenant_id,
        col(u.hour_bucket) >= func.date_trunc("hour", literal(since, TIMESTAMP(timezone=True)), "UTC"),
        col(u.hour_bucket) < until,
    )
    with borrowed(conn) as session:
        requests, succeeded, errors, unavailable, retries, duration_sum_s, duration_count = rows(session, query)[0]
    return RequestWindow(
        requests=int(requests),
        succeeded=int(succeeded),
        errors=int(errors),
        unavailable=int(unavailable),
        retries=int(retries),
        duration_sum_s=float(duration_sum_s),
        duration_count=int(duration_count),
    )
