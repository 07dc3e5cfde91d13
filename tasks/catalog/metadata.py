"""EIA's route metadata as plain values: what `GET /v2/<route>` and `/v2/<route>/facet/<id>` say.

Pure: parses response bodies the client returned; no HTTP here. A branch (`/v2/electricity`) lists
child routes; a data route lists its frequencies, facets, data columns (with units, when EIA gives
them: `natural-gas/pri/fut` answers `"data": {"value": []}`), and its first and last period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.core.errors import EiaMalformedResponse


@dataclass(frozen=True, slots=True)
class RouteMetadata:
    route: str
    name: str | None = None
    description: str | None = None
    frequencies: tuple[str, ...] = ()
    default_frequency: str | None = None
    facets: tuple[str, ...] = ()
    facet_descriptions: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str | None] = field(default_factory=dict)  # data column -> its unit, if EIA says
    start: str | None = None  # startPeriod, in the default frequency's shape
    end: str | None = None
    children: tuple[str, ...] = ()  # child route ids, for a branch

    @property
    def is_data_route(self) -> bool:
        return bool(self.frequencies) or bool(self.units)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.units)


def _response(body: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    response = body.get("response")
    if not isinstance(response, Mapping):
        raise EiaMalformedResponse(f"EIA metadata for {what} has no `response` object")
    return response


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_route_metadata(route: str, body: Mapping[str, Any]) -> RouteMetadata:
    """The metadata of `/v2/<route>` (a branch or a data route)."""
    response = _response(body, f"/v2/{route}")
    routes = response.get("routes")
    children = tuple(str(r["id"]) for r in routes if isinstance(r, Mapping) and "id" in r) if routes else ()
    frequencies = tuple(str(f["id"]) for f in response.get("frequency") or () if isinstance(f, Mapping) and "id" in f)
    facets = [f for f in response.get("facets") or () if isinstance(f, Mapping) and "id" in f]
    data = response.get("data") or {}
    units: dict[str, str | None] = {}
    if isinstance(data, Mapping):
        for column, about in data.items():
            units[str(column)] = _text(about.get("units")) if isinstance(about, Mapping) else None
    return RouteMetadata(
        route=route.strip("/"),
        name=_text(response.get("name")),
        description=_text(response.get("description")),
        frequencies=frequencies,
        default_frequency=_text(response.get("defaultFrequency")),
        facets=tuple(str(f["id"]) for f in facets),
        facet_descriptions={str(f["id"]): str(f.get("description") or f["id"]) for f in facets},
        units=units,
        start=_text(response.get("startPeriod")),
        end=_text(response.get("endPeriod")),
        children=children,
    )


def parse_facet_values(route: str, facet: str, body: Mapping[str, Any]) -> tuple[str, ...]:
    """The values EIA lists for one facet of a route (`/v2/<route>/facet/<facet>`), in its order."""
    response = _response(body, f"/v2/{route}/facet/{facet}")
    values = response.get("facets")
    if not isinstance(values, list):
        raise EiaMalformedResponse(f"EIA facet list for /v2/{route}/facet/{facet} has no `facets` list")
    return tuple(str(v["id"]) for v in values if isinstance(v, Mapping) and "id" in v)
