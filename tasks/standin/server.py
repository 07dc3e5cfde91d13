"""A local stand-in for EIA API v2 and the bulk download site, with fault injection.

The pipeline's only stand-in: tests and the offline `eia demo` talk HTTP to this server instead of
api.eia.gov, so the real client code (paging, retries, throttling, key scrubbing) runs unchanged.
It answers like EIA does: PHP-style query parameters echoed back in `request.params` (api_key
included), `total` and values as strings on `/data` routes, numbers on `/v2/seriesid/`, a 5,000-row
page cap with the "incomplete return" warning, and the gateway's no-cache headers.

Error bodies come in the two shapes EIA really sends, each used consistently:
- the API gateway in front of EIA (api.data.gov's API Umbrella) rejects keys and throttles with
  `{"error": {"code": "API_KEY_INVALID", "message": "..."}}` (403 API_KEY_MISSING/API_KEY_INVALID,
  429 OVER_RATE_LIMIT);
- the EIA application reports bad parameters, unknown routes and series, and failures with
  `{"error": "<message>", "code": <HTTP status>}` (400, 404, 500).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, formatdate, parsedate_to_datetime
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tasks.standin.data import ReplayDataset, RouteData, data_columns
from tasks.standin.metadata import children, derived_metadata, facet_list, facet_path, facet_values

API_VERSION: Final = "2.1.14"
EXCEL_ADDIN_VERSION: Final = "2.1.0"
DEFAULT_PAGE_CAP: Final = 5000
REGISTER_URL: Final = "https://www.eia.gov/opendata/register.php"
API_KEY_INVALID_MESSAGE: Final = (
    "An invalid api_key has been supplied. Please check the api_key or register for a new one at " + REGISTER_URL
)
API_KEY_MISSING_MESSAGE: Final = "No api_key was supplied. Please register for one at " + REGISTER_URL
OVER_RATE_LIMIT_MESSAGE: Final = (
    "You have exceeded your rate limit. Try again later or contact us at https://api.eia.gov:443/contact/"
    " for assistance"
)
SERVER_ERROR_MESSAGE: Final = "An error occurred while processing your request. Please try again later."

# What the real gateway sends with every API response: nothing may be cached, by anyone.
_API_HEADERS: Final = {
    "Cache-Control": "max-age=0, no-cache, no-store",
    "Pragma": "no-cache",
    "Vary": "Accept-Encoding",
    "X-Content-Type-Options": "nosniff",
    "Access-Control-Allow-Origin": "*",
}
_PAGE_CACHE_SIZE: Final = 64


@dataclass
class FaultPlan:
    """Faults to inject into `/v2/...` answers; tests may change it between (or during) requests.

    Applied in this order: api_key_invalid, burst_429, outage, error_200_body, error_rate,
    malformed_rate, timeout_rate. `latency_s` delays every API answer, faulty or not. The
    fractions apply to data requests (`/data` and `/seriesid`), not to route metadata.

    The rates draw from one seeded sequence in arrival order, so which request takes which draw
    depends on how concurrent requests interleave. `cut_next` and `hang_next` are deterministic
    instead: they count down over the next data answers that would otherwise succeed (a 404 or a
    500 does not use them up), and one answer is never both cut and held.

    `reorder` does what EIA may do and the stand-in otherwise never does: rows that tie on every
    sort column of the request come in a different order on every request (without a sort, every
    row ties, so the rows come unsorted). Each data answer re-draws, later pages of one result set
    included, from its own sequence seeded by `seed` (the rates' draws are unchanged by it).
    `retry_after_date` sends the 429s' `Retry-After` as an HTTP-date `retry_after_s` from now
    (whole seconds, rounded down) instead of as delta-seconds.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    seed: int = 0
    burst_429: int = 0  # counts down as 429s are sent
    retry_after_s: int = 1
    retry_after_date: bool = False  # Retry-After as an HTTP-date (RFC 9110), not delta-seconds
    outage: bool = False
    api_key_invalid: bool = False
    total_inflation: int = 0
    malformed_rate: float = 0.0
    error_200_body: bool = False
    timeout_rate: float = 0.0
    timeout_sleep_s: float = 5.0
    cut_next: int = 0  # the next N good data answers are cut in half (counts down)
    hang_next: int = 0  # the next N good data answers wait timeout_sleep_s first (counts down)
    reorder: bool = False  # ties on the sort (everything, without a sort) in a new order per request


@dataclass
class ReplayStats:
    """Request counters, updated by the server thread and read by tests."""

    requests: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    api_requests: int = 0
    zip_requests: int = 0  # 200 answers only: a 304 is not a download
    manifest_requests: int = 0
    in_flight: int = 0  # every request the server is answering, API and bulk alike
    max_in_flight: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    seen_query_strings: list[str] = field(default_factory=list)  # raw, as received (api_key included)
    # (time.time(), path) of every /v2 request as it arrives, in arrival order: when requests start
    api_arrivals: list[tuple[float, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def reset(self) -> None:
        with self._lock:
            self.requests = self.api_requests = self.zip_requests = self.manifest_requests = 0
            self.max_in_flight = self.in_flight
            self.by_path.clear()
            self.statuses.clear()
            self.seen_query_strings.clear()
            self.api_arrivals.clear()

    def _arrived(self, path: str, query: str) -> None:
        now = time.time()
        with self._lock:
            self.requests += 1
            self.by_path[path] += 1
            self.seen_query_strings.append(query)
            if path == "/v2" or path.startswith("/v2/"):
                self.api_requests += 1
                self.api_arrivals.append((now, path))
            elif path == "/bulk/manifest.txt":
                self.manifest_requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _answered(self, path: str, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1
            if status == 200 and path.startswith("/bulk/") and path.endswith(".zip"):
                self.zip_requests += 1

    def _left(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Counting:
    """ASGI wrapper keeping ReplayStats; a request leaves flight as its last body chunk is sent."""

    def __init__(self, app: ASGIApp, stats: Callable[[], ReplayStats]) -> None:
        self._app = app
        self._stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        stats = self._stats()
        path: str = scope["path"]
        stats._arrived(path, scope["query_string"].decode("latin-1"))
        left = False

        def leave() -> None:
            nonlocal left
            if not left:
                left = True
                stats._left()

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                stats._answered(path, message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Before the bytes leave: a client cannot see the answer while it still counts.
                leave()
            await send(message)

        try:
            await self._app(scope, receive, counted_send)
        finally:
            leave()


class _EiaError(Exception):
    """An EIA application error, answered as {"error": message, "code": status}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- EIA's query parameters ------------------------------------------------------------------


def _php_key(raw: str, node: dict[Any, Any]) -> Any:
    if raw == "":
        return max((k for k in node if isinstance(k, int)), default=-1) + 1
    return int(raw) if re.fullmatch(r"0|[1-9][0-9]*", raw) else raw


def _php_json(node: Any) -> Any:
    """PHP arrays as json_encode writes them: a list when the keys are 0..n-1 in order."""
    if not isinstance(node, dict):
        return node
    if list(node) == list(range(len(node))):
        return [_php_json(v) for v in node.values()]
    return {str(k): _php_json(v) for k, v in node.items()}


def php_params(query_string: str) -> Any:
    """A query string parsed the way EIA's PHP backend does (`data[0]=x`, `facets[id][]=v`, ...)."""
    root: dict[Any, Any] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        base, bracket, rest = name.partition("[")
        keys = [base, *re.findall(r"\[([^\]]*)\]", bracket + rest)] if base and rest else [name]
        node = root
        for depth, raw in enumerate(keys):
            key = _php_key(raw, node) if depth else raw
            if depth == len(keys) - 1:
                node[key] = value
            else:
                child = node.get(key)
                if not isinstance(child, dict):
                    child = node[key] = {}
                node = child
    return _php_json(root)


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if not isinstance(v, dict | list)]
    if isinstance(value, dict):
        return _strings(list(value.values()))
    return [] if value is None else [str(value)]


@dataclass(frozen=True)
class _Query:
    frequency: str | None
    data: tuple[str, ...]
    facets: tuple[tuple[str, frozenset[str]], ...]
    start: str | None
    end: str | None
    sort: tuple[tuple[str, bool], ...]  # (column, descending)
    offset: int
    length: int

    @property
    def selection(self) -> tuple[Any, ...]:
        """What decides the matched rows and their order (everything but the page window)."""
        return (self.frequency, self.facets, self.start, self.end, self.sort)


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        number = int(str(raw))
    except ValueError:
        number = -1
    if number < 0:
        raise _EiaError(400, f"Invalid {name} '{raw}' provided. {name} must be a non-negative integer.")
    return number


def _parse_query(params: Any, page_cap: int) -> _Query:
    if not isinstance(params, dict):
        params = {}
    facets = params.get("facets")
    sort = params.get("sort")
    sort_specs = sort if isinstance(sort, list) else list(sort.values()) if isinstance(sort, dict) else []
    frequency = params.get("frequency")
    return _Query(
        frequency=str(frequency) if frequency else None,
        data=tuple(_strings(params.get("data"))),
        facets=tuple((str(k), frozenset(_strings(v))) for k, v in (facets.items() if isinstance(facets, dict) else [])),
        start=str(params["start"]) if params.get("start") else None,
        end=str(params["end"]) if params.get("end") else None,
        sort=tuple(_sort_spec(spec) for spec in sort_specs),
        offset=_int_param(params, "offset", 0),
        length=min(_int_param(params, "length", page_cap), page_cap),
    )


def _sort_spec(spec: Any) -> tuple[str, bool]:
    if not isinstance(spec, dict) or not spec.get("column"):
        raise _EiaError(400, "Invalid sort provided. Each sort needs a column and a direction.")
    direction = str(spec.get("direction", "asc")).lower()
    if direction not in ("asc", "desc"):
        raise _EiaError(400, f"Invalid sort direction '{direction}' provided. Use 'asc' or 'desc'.")
    return str(spec["column"]), direction == "desc"


def _select(rows: list[dict[str, Any]], query: _Query) -> list[dict[str, Any]]:
    """Rows matching the facets and the start/end window, in the requested order (stable)."""
    # Period tokens of one frequency compare correctly as strings; seriesid periods may be ints.
    matched = [
        row
        for row in rows
        if all(str(row.get(facet)) in values for facet, values in query.facets)
        and (query.start is None or str(row.get("period")) >= query.start)
        and (query.end is None or str(row.get("period")) <= query.end)
    ]
    # Sorting by the last key first, stably, gives a multi-key sort that keeps the stored order on ties.
    for column, descending in reversed(query.sort):
        matched.sort(key=_text_of(column), reverse=descending)
    return matched


def _text_of(column: str) -> Callable[[dict[str, Any]], str]:
    return lambda row: str(row.get(column, ""))


def _reorder_ties(rows: list[dict[str, Any]], query: _Query, rng: random.Random) -> list[dict[str, Any]]:
    """The rows in a new order that still honours the sort: each run of rows tying on every sort
    column is shuffled (`rows` is sorted, so ties are adjacent). Without a sort, all rows tie."""
    columns = [column for column, _ in query.sort]

    def key(row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(row.get(column, "")) for column in columns)

    reordered: list[dict[str, Any]] = []
    for _, tied in itertools.groupby(rows, key=key):
        run = list(tied)
        rng.shuffle(run)
        reordered += run
    return reordered


class _SelectionCache:
    """Matched rows per (rows list, selection): paging through a large route sorts it only once.

    A first page (offset 0) always selects afresh, so a dataset changed between runs (revised
    values, replaced rows) is served as changed; later pages reuse the first page's selection,
    much as EIA serves a paging client one consistent result set.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = OrderedDict()

    def matched(self, rows: list[dict[str, Any]], query: _Query) -> list[dict[str, Any]]:
        key = (id(rows), len(rows), query.selection)
        hit = self._entries.get(key)
        if hit is not None and hit[0] is rows and query.offset > 0:
            self._entries.move_to_end(key)
            return hit[1]
        matched = _select(rows, query)
        self._entries[key] = (rows, matched)  # holding `rows` keeps its id from being reused
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return matched


def _project(row: dict[str, Any], requested: frozenset[str]) -> dict[str, Any]:
    """A row with only the requested data columns (and their units); descriptive columns stay."""
    dropped = {c for c in data_columns(row) if c not in requested}
    dropped |= {f"{c}-units" for c in dropped}
    return {k: v for k, v in row.items() if k not in dropped} if dropped else row


def _json_bytes(body: Any) -> bytes:
    # Compact, ASCII, and "/" escaped as "\/": byte for byte what EIA's PHP json_encode sends.
    return json.dumps(body, separators=(",", ":")).replace("/", "\\/").encode("ascii")


# --- the server ------------------------------------------------------------------------------


class EiaReplayServer:
    """EIA API v2 (`/v2/...`) and the bulk site (`/bulk/...`) on a local port, in a daemon thread."""

    def __init__(
        self,
        dataset: ReplayDataset,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_cap: int = DEFAULT_PAGE_CAP,
        api_version: str = API_VERSION,
        warnings_at_top_level: bool = True,
        faults: FaultPlan | None = None,
    ) -> None:
        self.dataset = dataset
        self.host = host
        self.port = port
        self.page_cap = page_cap
        self.api_version = api_version
        self.warnings_at_top_level = warnings_at_top_level
        self.faults = faults or FaultPlan()
        self.stats = ReplayStats()
        self._fault_lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._rng_for = (self.faults, self.faults.seed)  # a new plan or seed restarts the sequence
        self._order_rng = random.Random(f"reorder:{self.faults.seed}")
        self._order_for = (self.faults, self.faults.seed)
        self._cache = _SelectionCache(_PAGE_CACHE_SIZE)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._app = _Counting(
            Starlette(
                routes=[
                    Route("/v2/seriesid/{series_id:path}", self._seriesid),
                    Route("/v2", self._route),
                    Route("/v2/{route:path}", self._route),
                    Route("/bulk/manifest.txt", self._manifest),
                    Route("/bulk/{name}", self._bulk_file),
                ]
            ),
            lambda: self.stats,
        )

    # -- lifecycle --

    @property
    def base_url(self) -> str:
        if self._thread is None:
            raise RuntimeError("the EIA replay server is not started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v2"

    @property
    def bulk_url(self) -> str:
        return f"{self.base_url}/bulk"

    def start(self, timeout_s: float = 10.0) -> EiaReplayServer:
        """Starts serving; returns once the port accepts connections."""
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # An explicit IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections; without it,
        # Nagle's algorithm holds each keep-alive response body back by a delayed-ACK (~40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Binding here, not in uvicorn, is how port 0 becomes a known port before serving starts.
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"eia-replay-{self.port}", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"the EIA replay server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> EiaReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- responses --

    def _api_response(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return self._api_bytes(_json_bytes(body), status, headers)

    def _api_bytes(self, content: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(
            content,
            status_code=status,
            media_type="application/json",
            headers={
                **_API_HEADERS,
                "Expires": formatdate(usegmt=True),  # uvicorn sends the matching Date
                "X-Api-Umbrella-Request-Id": uuid.uuid4().hex,
                **(headers or {}),
            },
        )

    def _gateway_error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return self._api_response({"error": {"code": code, "message": message}}, status, headers)

    def _eia_error(self, status: int, message: str) -> Response:
        return self._api_response({"error": message, "code": status}, status)

    def _envelope(self, response: dict[str, Any], command: str, params: Any, truncated: bool) -> dict[str, Any]:
        warning = {
            "warning": "incomplete return",
            "description": f"The API can only return {self.page_cap} rows in JSON format.  Please consider "
            "constraining your request with facet, start, or end, or using offset to paginate results.",
        }
        body: dict[str, Any] = {}
        if truncated and self.warnings_at_top_level:
            body["warnings"] = [warning]
        elif truncated:
            response = {"warnings": [warning], **response}
        body.update(
            response=response,
            request={"command": command, "params": params},
            apiVersion=self.api_version,
            ExcelAddInVersion=EXCEL_ADDIN_VERSION,
        )
        return body

    # -- fault injection --

    def _draws(self) -> tuple[float, float, float]:
        """One draw per random fault, always all three, so one rate never shifts another's sequence."""
        with self._fault_lock:
            faults = self.faults
            if self._rng_for[0] is not faults or self._rng_for[1] != faults.seed:
                self._rng = random.Random(faults.seed)
                self._rng_for = (faults, faults.seed)
            return self._rng.random(), self._rng.random(), self._rng.random()

    def _order_of_ties(self) -> random.Random:
        """A fresh shuffle for one answer, the next in the `reorder` sequence of the plan's seed."""
        with self._fault_lock:
            faults = self.faults
            if self._order_for[0] is not faults or self._order_for[1] != faults.seed:
                self._order_rng = random.Random(f"reorder:{faults.seed}")
                self._order_for = (faults, faults.seed)
            return random.Random(self._order_rng.getrandbits(64))

    def _served_order(self, matched: list[dict[str, Any]], query: _Query) -> list[dict[str, Any]]:
        """The matched rows in the order this answer serves them (the cached list is never changed)."""
        return _reorder_ties(matched, query, self._order_of_ties()) if self.faults.reorder else matched

    def _take(self, countdown: str) -> bool:
        """Uses up one of a countdown fault (burst_429, cut_next, hang_next), if any are left."""
        with self._fault_lock:
            left: int = getattr(self.faults, countdown)
            if left > 0:
                setattr(self.faults, countdown, left - 1)
                return True
            return False

    async def _serve_api(self, request: Request, build: Callable[[Any], Response], *, data_request: bool) -> Response:
        if self.faults.latency_s > 0:
            await asyncio.sleep(self.faults.latency_s)
        faults = self.faults
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        if not any(name == "api_key" and value for name, value in pairs):
            return self._gateway_error(403, "API_KEY_MISSING", API_KEY_MISSING_MESSAGE)
        if faults.api_key_invalid:
            return self._gateway_error(403, "API_KEY_INVALID", API_KEY_INVALID_MESSAGE)
        if self._take("burst_429"):
            retry_after = (
                formatdate(time.time() + faults.retry_after_s, usegmt=True)
                if faults.retry_after_date
                else str(faults.retry_after_s)
            )
            return self._gateway_error(429, "OVER_RATE_LIMIT", OVER_RATE_LIMIT_MESSAGE, {"Retry-After": retry_after})
        if faults.outage:
            return self._eia_error(500, SERVER_ERROR_MESSAGE)
        if faults.error_200_body:
            return self._api_response({"error": SERVER_ERROR_MESSAGE, "code": 500})
        error_draw, malformed_draw, timeout_draw = self._draws() if data_request else (1.0, 1.0, 1.0)
        if error_draw < faults.error_rate:
            return self._eia_error(500, SERVER_ERROR_MESSAGE)
        try:
            response = build(php_params(request.url.query))
        except _EiaError as exc:
            return self._eia_error(exc.status, exc.message)
        drawn_hang = timeout_draw < faults.timeout_rate
        counted_cut = not drawn_hang and self._take("cut_next")  # a counted cut must be seen
        cut = counted_cut or malformed_draw < faults.malformed_rate
        if cut:
            content = bytes(response.body)
            response = self._api_bytes(content[: len(content) // 2], response.status_code)
        if drawn_hang or (not cut and self._take("hang_next")):
            await asyncio.sleep(faults.timeout_sleep_s)
        return response

    # -- /v2 --

    async def _route(self, request: Request) -> Response:
        path = str(request.path_params.get("route", "")).strip("/")
        if path == "data" or path.endswith("/data"):
            route = path.removesuffix("data").strip("/")
            return await self._serve_api(request, lambda p: self._data(route, p), data_request=True)
        return await self._serve_api(request, lambda p: self._metadata(path, p), data_request=False)

    def _data(self, route: str, params: Any) -> Response:
        choices = self.dataset.routes.get(route)
        command = f"/v2/{route}/data/"
        if not choices:
            raise _EiaError(404, f"Invalid route '{route}'. No data route exists at {command}")
        query = _parse_query(params, self.page_cap)
        data = _route_data_for(choices, query.frequency)
        known = {k for row in data.rows[:1000] for k in row}
        for column in query.data:
            if column not in known:
                raise _EiaError(400, f"Invalid data '{column}' provided.")
        for facet, _ in query.facets:
            if facet not in known:
                raise _EiaError(400, f"Invalid facet '{facet}' provided.")
        matched = self._served_order(self._cache.matched(data.rows, query), query)
        requested = frozenset(query.data)
        page = [_project(row, requested) for row in matched[query.offset : query.offset + query.length]]
        total = len(matched) + self.faults.total_inflation
        response: dict[str, Any] = {
            "total": str(total) if data.numbers_as_strings else total,
            "dateFormat": data.date_format,
            "frequency": data.frequency,
            "data": page,
        }
        if data.description is not None:
            response["description"] = data.description
        return self._api_response(self._envelope(response, command, params, len(page) < len(matched)))

    def _metadata(self, path: str, params: Any) -> Response:
        command = f"/v2/{path}/" if path else "/v2/"
        facet = facet_path(path)
        if facet is not None:  # /v2/<route>/facet[/<id>]: route facets, or one facet's values
            route, facet_id = facet
            if facet_id is None:
                listed = facet_list(self.dataset, route)
            else:
                listed = facet_values(self.dataset, route, facet_id)
            if listed is None:
                raise _EiaError(404, f"Invalid facet '{facet_id}' for route '{route}'. No route exists at {command}")
            return self._api_response(self._envelope(listed, command, params, False))
        stored = self.dataset.route_meta.get(path)
        if stored is not None:
            body = {
                **stored,
                "request": {"command": command, "params": params},
                "apiVersion": self.api_version,
            }
            return self._api_response(body)
        data = self.dataset.routes.get(path)
        if data:
            return self._api_response(self._envelope(derived_metadata(path, data), command, params, False))
        response = children(self.dataset, path)
        if response is None:
            raise _EiaError(404, f"Invalid route '{path}'. No route exists at {command}")
        return self._api_response(self._envelope(response, command, params, False))

    async def _seriesid(self, request: Request) -> Response:
        series_id = str(request.path_params["series_id"]).strip("/")
        return await self._serve_api(request, lambda p: self._series(series_id, p), data_request=True)

    def _series(self, series_id: str, params: Any) -> Response:
        stored = self.dataset.seriesid.get(series_id)
        if stored is None:
            raise _EiaError(
                404,
                f"invalid series_id '{series_id}'. For key registration, documentation, and examples see "
                "https://www.eia.gov/opendata/",
            )
        query = _parse_query(params, self.page_cap)
        rows: list[dict[str, Any]] = stored["response"]["data"]
        matched = self._served_order(self._cache.matched(rows, query), query)
        page = matched[query.offset : query.offset + query.length]
        response = {**stored["response"], "total": len(matched) + self.faults.total_inflation, "data": page}
        command = f"/v2/seriesid/{series_id}"
        return self._api_response(self._envelope(response, command, params, len(page) < len(matched)))

    # -- /bulk --

    async def _manifest(self, request: Request) -> Response:
        manifest = self.dataset.bulk_manifest
        if manifest is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        datasets = {
            ident: {**entry, "accessURL": f"{self.bulk_url}/{ident}.zip"}
            for ident, entry in manifest.get("dataset", {}).items()
        }
        body = json.dumps({**manifest, "dataset": datasets}, indent=1)
        return Response(body, media_type="text/plain")

    async def _bulk_file(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        content = self.dataset.bulk_files.get(name)
        if content is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        etag = f'"{hashlib.sha256(content).hexdigest()[:32]}"'
        modified = self._bulk_modified(name.removesuffix(".zip"))
        headers = {"ETag": etag, "Last-Modified": format_datetime(modified, usegmt=True)}
        if _not_modified(request, etag, modified):
            return Response(status_code=304, headers=headers)
        return Response(content, media_type="application/zip", headers=headers)

    def _bulk_modified(self, ident: str) -> datetime:
        entry = ((self.dataset.bulk_manifest or {}).get("dataset") or {}).get(ident) or {}
        try:
            stamp = datetime.fromisoformat(str(entry.get("modified") or entry.get("last_updated")))
        except ValueError:
            stamp = datetime(2000, 1, 1, tzinfo=UTC)
        return stamp.astimezone(UTC).replace(microsecond=0)


def _route_data_for(choices: list[RouteData], frequency: str | None) -> RouteData:
    if frequency is None:
        return choices[0]  # EIA answers at the route's default frequency
    for data in choices:
        if data.frequency == frequency:
            return data
    valid = ", ".join(f"'{d.frequency}'" for d in choices)
    raise _EiaError(400, f"Invalid frequency '{frequency}' provided. The only valid frequencies are {valid}.")


def _not_modified(request: Request, etag: str, modified: datetime) -> bool:
    """RFC 9110: If-None-Match decides when present; If-Modified-Since only without it."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        return modified <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
