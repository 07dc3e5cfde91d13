"""Catalog entries from EIA's own metadata: `/v2/<route>` and `/v2/<route>/facet/<id>`.

An entry gets the route's series facets (all facets but those another determines), its area and
sector facets (recognised by id), the unit of each data column, `initial_start` from the route's
first period, and the frequency table's publication lag. When a route's full history would need
more than `max_pages` pages, its values of the series facet with the most values are grouped into
several entries, so one request still covers many series and each first run stays a few pages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tasks.catalog.metadata import RouteMetadata
from tasks.catalog.reader import MetadataReader
from tasks.catalog.rules import (
    MAX_PAGES_PER_ENTRY,
    PAGE_SIZE,
    area_facet_of,
    group_values,
    period_count,
    sector_facet_of,
    series_facets_of,
)
from tasks.core.catalog import CatalogEntry, CatalogError
from tasks.core.errors import STOP_CAUSES, EiaError, EiaNotFound, EiaRunStopped
from tasks.core.frequencies import BY_NAME, FREQUENCIES
from tasks.normalize.periods import PeriodError, api_period_token, parse_period


class DiscoverError(CatalogError):
    """What was asked of a route does not match its metadata; the message names the option."""


@dataclass(frozen=True, slots=True)
class DiscoverOptions:
    frequency: str | None = None
    facets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    data: tuple[str, ...] = ()
    page_size: int = PAGE_SIZE
    max_pages: int = MAX_PAGES_PER_ENTRY


def _frequency(meta: RouteMetadata, wanted: str | None) -> str:
    if wanted is not None:
        if wanted not in meta.frequencies:
            raise DiscoverError(
                f"{meta.route} does not offer --frequency {wanted!r}; it offers {', '.join(meta.frequencies)}"
            )
        if wanted not in FREQUENCIES:
            raise DiscoverError(f"--frequency {wanted!r} is not one the pipeline loads ({', '.join(FREQUENCIES)})")
        return wanted
    offered = [f for f in meta.frequencies if f in FREQUENCIES]
    if meta.default_frequency in offered:
        return str(meta.default_frequency)
    if not offered:
        raise DiscoverError(f"{meta.route} offers no frequency the pipeline loads ({', '.join(meta.frequencies)})")
    return offered[0]


def _initial_start(meta: RouteMetadata, frequency: str) -> str | None:
    if meta.start is None:
        return None
    for shape in dict.fromkeys((meta.default_frequency, frequency)):
        if shape in FREQUENCIES:
            try:
                return api_period_token(parse_period(meta.start, str(shape)).start, frequency)
            except PeriodError:
                continue
    return None


def _history_periods(meta: RouteMetadata, frequency: str) -> int:
    if meta.start is None or meta.end is None:
        return 1
    for shape in dict.fromkeys((meta.default_frequency, frequency)):
        if shape in FREQUENCIES:
            count = period_count(meta.start, meta.end, str(shape), frequency)
            if count is not None:
                return max(1, count)
    return 1


def entry_id(route: str, frequency: str) -> str:
    return f"{route.strip('/').replace('/', '-')}-{frequency}"


async def discover_route(reader: MetadataReader, route: str, options: DiscoverOptions) -> list[CatalogEntry]:
    """The entries covering `route` at one frequency, narrowed by the options' facet filters."""
    route = route.strip("/")
    try:
        meta = await reader.route(route)
    except EiaNotFound:
        raise DiscoverError(f"EIA has no route {route!r} (GET /v2/{route} answered 404)") from None
    if not meta.is_data_route:
        raise DiscoverError(f"{route!r} is not a data route; its child routes are: {', '.join(meta.children)}")
    frequency = _frequency(meta, options.frequency)
    columns = options.data or meta.columns
    missing = [c for c in columns if c not in meta.columns]
    if missing:
        raise DiscoverError(f"{route} has no data column {missing[0]!r} (--data); it has {', '.join(meta.columns)}")
    for facet, chosen in options.facets.items():
        if facet not in meta.facets:
            raise DiscoverError(f"{route} has no facet {facet!r} (--facet); its facets are {', '.join(meta.facets)}")
        listed = set(await reader.facet_values(route, facet))
        unknown = [v for v in chosen if v not in listed]
        if unknown:
            raise DiscoverError(f"EIA lists no value {unknown[0]!r} for facet {facet!r} of {route} (--facet)")

    series = series_facets_of(meta.facets)
    values: dict[str, tuple[str, ...]] = {}
    for facet in series:
        values[facet] = options.facets.get(facet) or await reader.facet_values(route, facet)
    series_count = math.prod(max(1, len(v)) for v in values.values())
    rows = _history_periods(meta, frequency) * series_count
    budget = options.max_pages * options.page_size
    groups: list[dict[str, tuple[str, ...]]] = [dict(options.facets)]
    splittable = [f for f in series if len(values[f]) > 1]
    if rows > budget and splittable:
        split = max(splittable, key=lambda f: len(values[f]))
        chunks = group_values(values[split], rows / len(values[split]), budget)
        if len(chunks) > 1:
            groups = [{**options.facets, split: chunk} for chunk in chunks]

    base = entry_id(route, frequency)
    about = (meta.name or meta.description or route).strip().splitlines()[0]
    lag = BY_NAME[frequency].publication_lag.days
    return [
        CatalogEntry(
            id=base if len(groups) == 1 else f"{base}-{i + 1}",
            route=route,
            frequency=frequency,
            data=tuple(columns),
            facets=facets,
            series_facets=series,
            area_facet=area_facet_of(meta.facets),
            sector_facet=sector_facet_of(meta.facets),
            units={c: u for c in columns if (u := meta.units.get(c))},
            publication_lag_days=lag,
            initial_start=_initial_start(meta, frequency),
            description=about if len(groups) == 1 else f"{about} (part {i + 1} of {len(groups)})",
        )
        for i, facets in enumerate(groups)
    ]


@dataclass(slots=True)
class WalkResult:
    entries: list[CatalogEntry] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)  # data routes discovered
    skipped: list[str] = field(default_factory=list)  # "route: why", for routes that gave no entry


async def discover_tree(
    reader: MetadataReader,
    *,
    root: str = "",
    progress: Callable[[int, int, str], None] | None = None,
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_PAGES_PER_ENTRY,
) -> WalkResult:
    """Walks the route tree from `root` (`/v2` itself by default) and discovers every data route.

    `progress(done, known, path)` is called after each route: `known` grows as branches are opened.
    Fatal client faults (a rejected key, an open breaker, an exhausted quota) propagate; a route EIA
    cannot describe is skipped and named in `skipped`.
    """
    result = WalkResult()
    queue: list[str] = [root.strip("/")]
    done = 0
    options = DiscoverOptions(page_size=page_size, max_pages=max_pages)
    while queue:
        path = queue.pop(0)
        try:
            meta = await reader.route(path)
            if meta.is_data_route:
                result.entries += await discover_route(reader, path, options)
                result.routes.append(path)
            else:
                queue += [f"{path}/{child}".strip("/") for child in meta.children]
        except (DiscoverError, EiaNotFound) as exc:
            result.skipped.append(f"{path or '/'}: {exc}")
        except EiaError as exc:
            if exc.kind in STOP_CAUSES or isinstance(exc, EiaRunStopped):  # no other request can succeed
                raise
            result.skipped.append(f"{path or '/'}: {exc}")
        done += 1
        if progress is not None:
            progress(done, done + len(queue), path)
    return result
