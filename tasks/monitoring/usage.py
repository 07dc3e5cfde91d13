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

from tasks.core.errors import EiaServerError, EiaTimeout
from tasks.store.tables import USAGE_LEDGER
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
    errors = " + ".join(f"errors_{k}" for k in ERROR_KINDS)
    unavailable = " + ".join(f"errors_{k}" for k in UNAVAILABLE_KINDS)
    row = conn.execute(
        f"""SELECT coalesce(sum(requests), 0), coalesce(sum(requests_2xx), 0), coalesce(sum({errors}), 0),
                   coalesce(sum({unavailable}), 0), coalesce(sum(retries), 0), coalesce(sum(latency_sum_s), 0),
                   coalesce(sum(latency_count), 0)
            FROM {USAGE_LEDGER}
            WHERE tenant_id = %s AND hour_bucket >= date_trunc('hour', %s::timestamptz, 'UTC') AND hour_bucket < %s""",
        (tenant_id, since, until),
    ).fetchone()
    assert row is not None
    return RequestWindow(
        requests=int(row[0]),
        succeeded=int(row[1]),
        errors=int(row[2]),
        unavailable=int(row[3]),
        retries=int(row[4]),
        duration_sum_s=float(row[5]),
        duration_count=int(row[6]),
    )
