"""The EIA error taxonomy: what failed, and whether retrying can help.

`transient` errors are retried by Prefect task retries (with backoff and jitter) and count towards
the circuit breaker; fatal ones stop the run at once with a message naming what to fix.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final


class EiaError(Exception):
    """Base class. Messages never contain the API key (the client scrubs them)."""

    transient = False
    kind = "error"


class EiaAuthError(EiaError):
    """403 API_KEY_MISSING / API_KEY_INVALID: fix the key; retrying cannot help."""

    kind = "auth"


class EiaNotFound(EiaError):
    """404: a route or series id that EIA does not have (a catalog mistake)."""

    kind = "not_found"


class EiaRequestError(EiaError):
    """4xx other than auth/throttling: the request itself is wrong."""

    kind = "client_error"


class EiaRateLimited(EiaError):
    """429 / OVER_RATE_LIMIT that persisted after waiting Retry-After."""

    transient = True
    kind = "rate_limited"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class EiaServerError(EiaError):
    """5xx from EIA or its gateway."""

    transient = True
    kind = "server_error"


class EiaTimeout(EiaError):
    transient = True
    kind = "timeout"


class EiaMalformedResponse(EiaError):
    """Truncated or invalid JSON, a body over the size cap, or an `error` in a 200 body."""

    transient = True
    kind = "malformed"


class EiaBreakerOpen(EiaError):
    """The circuit breaker is open: EIA failed repeatedly, so calls fail fast for a while."""

    kind = "breaker_open"


class EiaRunStopped(EiaError):
    """The run was stopped by a fatal fault of another request: this one was never sent.

    `cause` says why in a few words ("breaker open", "API key rejected", ...); not transient, never
    counted by the breaker, never retried.
    """

    kind = "stopped"

    def __init__(self, cause: str) -> None:
        super().__init__(f"not run: {cause}")
        self.cause = cause


class QuotaExhausted(EiaError):
    """The usage ledger refused to reserve a request: an hourly or daily quota is used up.

    Nothing was sent. Not transient: retrying before the quota resets cannot succeed, so it never
    trips the circuit breaker and Prefect does not retry it; the run stops and names the quota.
    """

    kind = "quota"

    def __init__(self, message: str, *, quota: str, limit: int, used: int, resets_at: datetime) -> None:
        super().__init__(message)
        self.quota = quota  # "hourly" | "daily"
        self.limit = limit
        self.used = used
        self.resets_at = resets_at

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only fields would be lost by the default exception pickling (Prefect may pickle states).
        return (_quota_exhausted, (str(self), self.quota, self.limit, self.used, self.resets_at))


def _quota_exhausted(message: str, quota: str, limit: int, used: int, resets_at: datetime) -> QuotaExhausted:
    return QuotaExhausted(message, quota=quota, limit=limit, used=used, resets_at=resets_at)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, EiaError) and exc.transient


# The errors one HTTP exchange can end in, in the usage ledger's column order (`errors_<kind>`,
# sql/common/0004): `tasks.store.usage.ERROR_KINDS` is derived from it. Refusals before a request is
# sent (an open breaker, an exhausted quota) never reach the ledger.
EXCHANGE_ERRORS: tuple[type[EiaError], ...] = (
    EiaServerError,
    EiaTimeout,
    EiaMalformedResponse,
    EiaRateLimited,
    EiaAuthError,
    EiaNotFound,
    EiaRequestError,
)


# What a fatal fault means for the requests not yet sent, in the words the run report uses.
STOP_CAUSES: Final[dict[str, str]] = {
    "auth": "API key rejected",
    "breaker_open": "breaker open",
    "quota": "quota exhausted",
    "config": "Prefect limits missing",
    "ledger": "usage ledger unavailable",
    "database": "database unavailable",
}


def stop_cause(error: BaseException) -> str:
    """The few words saying why the rest of a run was not sent after `error` (its `kind`, in words)."""
    kind = getattr(error, "kind", None)
    return STOP_CAUSES.get(kind, kind) if isinstance(kind, str) else "a fatal error"
