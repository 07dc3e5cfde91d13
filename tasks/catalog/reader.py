"""Reads EIA's route metadata through the EIA client, once per route and facet (a per-run cache).

Every request goes through `EiaClient.get_json`: the slot pool, the rate limit, the breaker and the
quota reservation, so metadata requests are counted in the usage ledger like data requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.catalog.metadata import RouteMetadata, parse_facet_values, parse_route_metadata
from tasks.core.errors import EiaError
from tasks.eia.client import EiaClient
from tasks.eia.requests import facet_values_path, metadata_path


@dataclass(slots=True)
class MetadataReader:
    """`route(r)` and `facet_values(r, f)`, each fetched at most once; `requests` counts what was sent."""

    client: EiaClient
    requests: int = 0
    _routes: dict[str, RouteMetadata] = field(default_factory=dict)
    _values: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    _failed: dict[str, EiaError] = field(default_factory=dict)

    async def route(self, route: str) -> RouteMetadata:
        """The route's metadata; a fault is kept too, so a route EIA failed on is not asked again."""
        route = route.strip("/")
        failed = self._failed.get(route)
        if failed is not None:
            raise failed
        cached = self._routes.get(route)
        if cached is None:
            self.requests += 1
            try:
                body = await self.client.get_json(metadata_path(route), [])
            except EiaError as exc:
                self._failed[route] = exc
                raise
            cached = self._routes[route] = parse_route_metadata(route, body)
        return cached

    async def facet_values(self, route: str, facet: str) -> tuple[str, ...]:
        key = (route.strip("/"), facet)
        cached = self._values.get(key)
        if cached is None:
            self.requests += 1
            body = await self.client.get_json(facet_values_path(*key), [])
            cached = self._values[key] = parse_facet_values(key[0], facet, body)
        return cached
