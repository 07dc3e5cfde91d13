"""The EIA API v2 client: one place where requests are paced, guarded, classified and scrubbed.

Every request passes, in order: the circuit breaker (fail fast during outages), one `api_eia` slot
held only for the exchange, then pacing (the Prefect rate limit shared by every process, and the
in-process limiter), the quota reservation, and httpx. Pacing sits inside the slot, right before the
send, so a request admitted by the rate limit starts at once: admitted requests cannot queue for
slots and then start together. Responses are classified into the error taxonomy of `errors.py`; the
API key is scrubbed from every message this module produces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import pybreaker
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, concurrency, rate_limit

from tasks.core.errors import (
    EiaAuthError,
    EiaBreakerOpen,
    EiaError,
    EiaMalformedResponse,
    EiaNotFound,
    EiaRateLimited,
    EiaRequestError,
    EiaRunStopped,
    EiaServerError,
    EiaTimeout,
)
from tasks.core.redact import register_secret, scrub_text
from tasks.eia.limits import RATE_LIMIT, SLOT_LIMIT, AdaptiveLimiter
from tasks.eia.responses import EiaPage, decode_body, error_of, parse_page

logger = logging.getLogger(__name__)

API_KEY_SETTING = "EIA_API_KEY (Prefect Secret block 'eia-api-key')"
MAX_RETRY_AFTER_S = 60.0


class LimitsMissing(EiaError):
    """A Prefect global concurrency/rate limit is missing: with strict=True this is a set-up error."""

    kind = "config"


class _Throttled(Exception):
    """Internal: a 429 or throttling 403; handled by waiting, never counted by the breaker."""

    def __init__(self, retry_after_s: float | None, message: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class ClientSettings:
    api_url: str
    api_key: str = field(repr=False)
    timeout_s: float = 30.0
    requests_per_second: float = 2.0  # as the `api_eia_rate` rate limit of `eia init` (flows/cli/setup.py)
    burst: int = 2
    page_size: int = 5000
    max_body_bytes: int = 64 * 1024 * 1024
    max_rate_limit_waits: int = 5
    use_prefect_limits: bool = True


@dataclass(slots=True)
class RequestRecord:
    """What one HTTP exchange cost; the usage ledger and run report add these up."""

    path: str
    status: int | None
    error_kind: str | None
    duration_s: float
    bytes: int
    throttled: bool = False
    retry: bool = False  # this client already sent the same request (path and query): a re-send


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait for a `Retry-After` value (RFC 9110 10.2.3): delta-seconds or an HTTP-date.

    An HTTP-date means "until then", measured against `now` (default: this machine's clock). The
    wait is never negative and at most MAX_RETRY_AFTER_S; None when the value is absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" parses naive; HTTP-dates are always GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def _retry_after(response: httpx.Response) -> float | None:
    return retry_after_seconds(response.headers.get("Retry-After"))


class Breaker(Protocol):
    """The circuit breaker requests run under: a pybreaker breaker that also says when it opened.

    pybreaker keeps that in its private storage; the shared breaker (`tasks/quota/breaker.py`) reads
    it from its own row, so the "breaker open" error can name the moment.
    """

    @property
    def name(self) -> str | None: ...

    @property
    def reset_timeout(self) -> float: ...

    @property
    def opened_at(self) -> datetime | None: ...

    @property
    def current_state(self) -> str: ...

    def calling(self) -> contextlib.AbstractContextManager[Any]: ...


class EiaClient:
    """Async EIA client; use as `async with EiaClient(settings, breaker) as client:`."""

    def __init__(
        self,
        settings: ClientSettings,
        breaker: Breaker | None = None,
        *,
        on_request: Callable[[RequestRecord], None] | None = None,
        reserve: Callable[[], Awaitable[None]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`reserve` runs before every send (quota reservation; it raises to stop the request);
        `on_request` runs after every send with what it cost (usage ledger)."""
        if not settings.api_key:
            raise EiaAuthError(f"no EIA API key is configured: set {API_KEY_SETTING}")
        register_secret(settings.api_key)
        self.settings = settings
        self.breaker = breaker
        self.limiter = AdaptiveLimiter(settings.requests_per_second, settings.burst)
        self.requests_sent = 0
        self.stopped: str | None = None  # why the run's remaining requests are not sent (see `stop`)
        self.records: list[RequestRecord] = []
        self._sent: set[tuple[str, tuple[tuple[str, str], ...]]] = set()  # what was sent, to mark retries
        self._on_request = on_request
        self._reserve = reserve
        self._http = httpx.AsyncClient(
            base_url=settings.api_url.rstrip("/"),
            timeout=settings.timeout_s,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "eia-pipeline/0.1"},
        )

    async def __aenter__(self) -> EiaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    # -- pacing and guarding ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if not self.settings.use_prefect_limits:
            yield
            return
        try:
            async with concurrency(SLOT_LIMIT, occupy=1, strict=True):
                yield
        except ConcurrencySlotAcquisitionError as exc:
            raise LimitsMissing(
                f"Prefect global concurrency limit {SLOT_LIMIT!r} is missing or unusable ({scrub_text(str(exc))}); "
                "run `eia init` to create it"
            ) from None

    async def _pace(self) -> None:
        """Waits for the shared Prefect rate limit, then for this process's limiter; call in the slot."""
        if self.settings.use_prefect_limits:
            try:
                await rate_limit(RATE_LIMIT, occupy=1, strict=True)
            except ConcurrencySlotAcquisitionError as exc:
                raise LimitsMissing(
                    f"Prefect rate limit {RATE_LIMIT!r} is missing ({scrub_text(str(exc))}); "
                    "run `eia init` to create it"
                ) from None
        await self.limiter.acquire()

    # -- one HTTP exchange -------------------------------------------------------------------

    def stop(self, cause: str) -> None:
        """Stops the run's remaining requests: each one not yet sent raises `EiaRunStopped(cause)` instead.

        Called once another request hit a fault after which no request can succeed (a rejected key, an
        open breaker, an exhausted quota): requests waiting for a slot or the rate limit then leave
        without sending, and nothing half-sent is cut off.
        """
        if self.stopped is None:
            self.stopped = cause

    def _raise_if_stopped(self) -> None:
        if self.stopped is not None:
            raise EiaRunStopped(self.stopped)

    def _breaker_open_error(self) -> EiaBreakerOpen:
        assert self.breaker is not None
        return EiaBreakerOpen(
            f"the EIA circuit breaker '{self.breaker.name}' is open after repeated EIA failures "
            f"(opened at {self.breaker.opened_at}); calls fail fast for "
            f"{self.breaker.reset_timeout:g}s before a trial request. "
            "Check `eia breaker status`; `eia breaker reset` closes it."
        )

    def _fail_fast_if_open(self) -> None:
        """An open breaker fails a request before it waits for a slot or the rate limit."""
        breaker = self.breaker
        if breaker is None or breaker.current_state != pybreaker.STATE_OPEN or breaker.opened_at is None:
            return
        if (datetime.now(UTC) - breaker.opened_at).total_seconds() < breaker.reset_timeout:
            raise self._breaker_open_error()

    async def _exchange(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        """One request in its slot, paced right before it is sent and guarded by the breaker.

        The breaker sees only requests that are sent: a request the run stopped while it waited never
        reaches it, so it can neither count as a failure nor close a half-open breaker.
        """
        async with self._slot():
            # Paced inside the slot, right before the send: admission by the rate limit is the start.
            await self._pace()
            self._raise_if_stopped()
            if self.breaker is None:
                return await self._send(path, params)
            try:
                with self.breaker.calling():
                    return await self._send(path, params)
            except pybreaker.CircuitBreakerError:
                raise self._breaker_open_error() from None

    async def _send(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        """Reserves the request, sends it and classifies the answer; raises the taxonomy's errors."""
        query: list[tuple[str, str | int | float | bool | None]] = [*params, ("api_key", self.settings.api_key)]
        started = time.perf_counter()
        status: int | None = None
        size = 0
        kind: str | None = None
        sent = retry = False
        try:
            if self._reserve is not None:
                await self._reserve()
            sent = True
            self.requests_sent += 1
            started = time.perf_counter()  # EIA's latency: not the slot wait, pacing or the reservation
            request_key = (path, tuple(params))
            retry = request_key in self._sent
            self._sent.add(request_key)
            try:
                async with self._http.stream("GET", path, params=query) as response:
                    status = response.status_code
                    chunks: list[bytes] = []
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self.settings.max_body_bytes:
                            raise EiaMalformedResponse(
                                f"EIA response for {path} exceeds the {self.settings.max_body_bytes}-byte cap"
                            )
                        chunks.append(chunk)
            except httpx.TimeoutException:
                raise EiaTimeout(f"EIA request {path} timed out after {self.settings.timeout_s:g}s") from None
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {scrub_text(str(exc))}"
                raise EiaServerError(f"EIA request {path} failed: {failure}") from None
            return self._classify(path, response, b"".join(chunks))
        except _Throttled:
            kind = "rate_limited"
            raise
        except EiaError as exc:
            kind = exc.kind
            raise
        finally:
            if sent:
                record = RequestRecord(
                    path, status, kind, time.perf_counter() - started, size, kind == "rate_limited", retry
                )
                self.records.append(record)
                if self._on_request is not None:
                    self._on_request(record)

    def _classify(self, path: str, response: httpx.Response, content: bytes) -> dict[str, Any]:
        status = response.status_code
        try:
            body: dict[str, Any] | None = decode_body(content)
        except EiaMalformedResponse:
            if status == 200:
                raise
            body = None
        err = error_of(body) if body is not None else None
        code = (err[0] or "").upper() if err else ""
        message = scrub_text(err[1]) if err else f"HTTP {status}"
        if status == 429 or code == "OVER_RATE_LIMIT":
            raise _Throttled(_retry_after(response), f"EIA throttled {path}: {message}")
        if status == 403 or code in ("API_KEY_MISSING", "API_KEY_INVALID"):
            raise EiaAuthError(
                f"EIA rejected the API key ({code or 'HTTP 403'}): set {API_KEY_SETTING} to a valid key. "
                f"EIA said: {message}"
            )
        if status >= 500:
            raise EiaServerError(f"EIA answered HTTP {status} for {path}: {message}")
        if status == 404:
            raise EiaNotFound(f"EIA has no {path} (HTTP 404): {message}; check the catalog entry or series id")
        if status >= 400:
            raise EiaRequestError(f"EIA refused {path} (HTTP {status}): {message}")
        if body is None:
            raise EiaMalformedResponse(f"EIA sent an unreadable body for {path}")
        if err is not None:
            # EIA sometimes reports errors with a 200 status: never treat that as data.
            raise EiaMalformedResponse(f"EIA answered 200 with an error for {path}: {message}")
        return body

    async def get_json(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        """One logical request: guarded by the breaker, paced, waiting out throttling."""
        waits = 0
        while True:
            self._raise_if_stopped()
            self._fail_fast_if_open()
            try:
                body = await self._exchange(path, params)
            except _Throttled as throttled:
                self.limiter.on_throttled()
                waits += 1
                if waits > self.settings.max_rate_limit_waits:
                    raise EiaRateLimited(str(throttled), throttled.retry_after_s) from None
                delay = throttled.retry_after_s if throttled.retry_after_s is not None else 2.0**waits
                logger.warning("EIA throttled the request; waiting %.1fs, rate now %.2f/s", delay, self.limiter.rate)
                await asyncio.sleep(delay)
                continue
            self.limiter.on_success()
            return body

    async def fetch_page(self, path: str, params: list[tuple[str, str]], *, offset: int, length: int) -> EiaPage:
        body = await self.get_json(path, [*params, ("offset", str(offset)), ("length", str(length))])
        return parse_page(body)
