"""The EIA API v2 adapter: build a request, send it politely, read its pages.

What it does: `route_query` and `seriesid_query` build requests on a total sort order (`requests`);
`EiaClient` sends them through the `api_eia` slot pool, the shared Prefect rate limit, the process's
adaptive limiter, the circuit breaker and the quota hook, and classifies every answer into the error
taxonomy (`tasks.core.errors`), scrubbing the API key from whatever it says (`client`);
`fetch_all_pages` pages on offsets and stops on a short page (`paging`); `parse_page` reads EIA's
envelope, both `warnings` placements included (`responses`).

What it never does: decide what to fetch (the catalog and the series plan do), store anything, or
keep state beyond one run: quotas, the breaker and the throttle rate live in PostgreSQL (`tasks.quota`).
"""

from tasks.eia.client import ClientSettings, EiaClient, LimitsMissing, RequestRecord
from tasks.eia.limits import RATE_LIMIT, SLOT_LIMIT, AdaptiveLimiter
from tasks.eia.paging import FetchOutcome, fetch_all_pages
from tasks.eia.requests import route_query, seriesid_query
from tasks.eia.responses import EiaPage, parse_page

__all__ = [
    "RATE_LIMIT",
    "SLOT_LIMIT",
    "AdaptiveLimiter",
    "ClientSettings",
    "EiaClient",
    "EiaPage",
    "FetchOutcome",
    "LimitsMissing",
    "RequestRecord",
    "fetch_all_pages",
    "parse_page",
    "route_query",
    "seriesid_query",
]
