"""The usage ledger's columns (`eia_usage_ledger`, sql/common/0004): what one hour row counts.

Why it exists: the quota writer adds to these columns, and the metrics, health checks and SLA report
read them; they all take the names from here, so none of them imports the others. Plain data and
the standard library only: reading the column names loads no database client.
"""

from __future__ import annotations

from typing import Final

from tasks.core.errors import EXCHANGE_ERRORS

# Prometheus buckets (seconds) of `eia_request_duration_seconds`; +Inf is latency_count.
HISTOGRAM_BOUNDS: Final[tuple[float, ...]] = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
STATUS_CLASSES: Final[tuple[str, ...]] = ("2xx", "3xx", "4xx", "5xx", "no_status")
OTHER_KIND: Final = "other"  # an error outside EXCHANGE_ERRORS, or no answer and no classification
ERROR_KINDS: Final[tuple[str, ...]] = (*(error.kind for error in EXCHANGE_ERRORS), OTHER_KIND)


def le_column(bound: float) -> str:
    """The ledger column of one histogram bucket: 0.25 → latency_le_0_25, 60 → latency_le_60."""
    return "latency_le_" + format(bound, "g").replace(".", "_")


LE_COLUMNS: Final[tuple[str, ...]] = tuple(le_column(b) for b in HISTOGRAM_BOUNDS)
# Every counter a request adds to (all but `requests`, which the reservation counts, and the sum).
COUNTER_COLUMNS: Final[tuple[str, ...]] = (
    *(f"requests_{c}" for c in STATUS_CLASSES),
    *(f"errors_{k}" for k in ERROR_KINDS),
    "retries",
    "bytes",
    "latency_count",
    *LE_COLUMNS,
)


def status_class(status: int | None) -> str:
    """The `requests_<class>` column an answer counts in (None: no HTTP answer at all)."""
    if status is None:
        return "no_status"
    if 200 <= status < 300:
        return "2xx"
    if 400 <= status < 500:
        return "4xx"
    if status >= 500:
        return "5xx"
    return "3xx"  # 1xx never reaches us as a final answer; 3xx is not followed


def error_kind(kind: str | None) -> str:
    """The `errors_<kind>` column an error kind counts in: its own, or the catch-all `other`."""
    return kind if kind in ERROR_KINDS else OTHER_KIND
