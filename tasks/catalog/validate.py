"""Checks catalog entries against EIA's live metadata: one metadata request per route, and one
facet-value request per (route, facet) an entry filters on, each cached.

The five problems it catches, one line each, naming the entry and the field:
- a route that does not exist (or is a branch, not a data route);
- a frequency the route does not offer;
- a data column or a facet id the route does not have;
- a facet value EIA does not list (EIA would answer it with 0 rows and no error);
- series facets that do not identify one series (two series would share an id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from tasks.catalog.metadata import RouteMetadata
from tasks.catalog.reader import MetadataReader
from tasks.catalog.rules import identity_problems, overlap_problems
from tasks.core.catalog import CatalogEntry
from tasks.core.errors import STOP_CAUSES, EiaError, EiaNotFound, EiaRunStopped
from tasks.core.redact import scrub_text
from tasks.eia.client import EiaClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Problem:
    entry: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"entry {self.entry!r}, field {self.field!r}: {self.message}"


async def _metadata(reader: MetadataReader, entry: CatalogEntry) -> RouteMetadata | Problem:
    try:
        meta = await reader.route(entry.route)
    except EiaNotFound:
        return Problem(entry.id, "route", f"EIA has no route {entry.route!r} (GET /v2/{entry.route} answered 404)")
    if not meta.is_data_route:
        below = ", ".join(meta.children) or "nothing"
        return Problem(entry.id, "route", f"{entry.route!r} is not a data route; its child routes are: {below}")
    return meta


def _shape_problems(entry: CatalogEntry, meta: RouteMetadata) -> list[Problem]:
    problems = []
    if meta.frequencies and entry.frequency not in meta.frequencies:
        problems.append(
            Problem(
                entry.id,
                "frequency",
                f"{entry.route} does not offer {entry.frequency!r}; it offers {', '.join(meta.frequencies)}",
            )
        )
    columns = ", ".join(meta.columns) or "none"
    for column in entry.data:
        if column not in meta.columns:
            problems.append(Problem(entry.id, "data", f"{entry.route} has no data column {column!r}; it has {columns}"))
    facets = ", ".join(meta.facets) or "none"
    named = [(f"facets.{f}", f) for f in entry.facets] + [("series_facets", f) for f in entry.series_facets]
    named += [(name, f) for name, f in (("area_facet", entry.area_facet), ("sector_facet", entry.sector_facet)) if f]
    for field_name, facet in named:
        if facet not in meta.facets and facet != "period":
            why = f"{entry.route} has no facet {facet!r}; its facets are {facets}"
            problems.append(Problem(entry.id, field_name, why))
    problems += [Problem(entry.id, "series_facets", why) for why in identity_problems(entry, meta.facets)]
    return problems


async def _value_problems(reader: MetadataReader, entry: CatalogEntry, meta: RouteMetadata) -> list[Problem]:
    problems = []
    for facet, values in entry.facets.items():
        if facet not in meta.facets:
            continue  # already reported as a facet id that does not exist
        listed = set(await reader.facet_values(entry.route, facet))
        for value in values:
            if value not in listed:
                problems.append(
                    Problem(
                        entry.id,
                        f"facets.{facet}",
                        f"EIA lists no value {value!r} for facet {facet!r} of {entry.route} "
                        "(a request for it returns 0 rows and no error)",
                    )
                )
    return problems


async def validate_entries(
    reader: MetadataReader, entries: Sequence[CatalogEntry], *, check_values: bool = True
) -> list[Problem]:
    """Every problem of every entry, in catalog order (then the cross-entry series-id clashes)."""
    problems: list[Problem] = []
    for entry in entries:
        meta = await _metadata(reader, entry)
        if isinstance(meta, Problem):
            problems.append(meta)
            continue
        problems += _shape_problems(entry, meta)
        if check_values:
            problems += await _value_problems(reader, entry, meta)
    problems += [Problem(entry_id, "series_facets", why) for entry_id, why in overlap_problems(entries)]
    return problems


@dataclass(slots=True)
class RunValidation:
    """What a series run learned about its catalog before fetching data."""

    problems: dict[str, str] = field(default_factory=dict)  # entry id -> its problems, one line
    unvalidated: list[str] = field(default_factory=list)  # "route: why": metadata unreadable, entries run unchecked
    fatal: EiaError | None = None  # a fault after which no request can succeed (the run stops)
    requests: int = 0


def _fatal(exc: EiaError) -> bool:
    return exc.kind in STOP_CAUSES or isinstance(exc, EiaRunStopped)


async def validate_for_run(client: EiaClient, entries: Sequence[CatalogEntry]) -> RunValidation:
    """The series flow's check before it spends requests on data: one metadata request per route.

    Routes, frequencies, data columns, facet ids and series identity are checked (facet values are
    left to `eia catalog validate`, which spends a request per facet on them). A route whose metadata
    EIA cannot send right now (a 5xx, a timeout) leaves its entries unchecked rather than unloaded.
    """
    reader = MetadataReader(client)
    found: dict[str, list[str]] = {}
    result = RunValidation()
    failed: set[str] = set()
    # The routes' metadata requests go out together (the slot pool bounds them); faults are read below.
    await asyncio.gather(*(reader.route(r) for r in dict.fromkeys(e.route for e in entries)), return_exceptions=True)
    for entry in entries:
        if entry.route in failed:
            continue
        try:
            meta = await _metadata(reader, entry)
        except EiaError as exc:
            if _fatal(exc):
                result.fatal = exc
                break
            failed.add(entry.route)
            result.unvalidated.append(f"{entry.route}: {scrub_text(str(exc))}")
            continue
        problems = [meta] if isinstance(meta, Problem) else _shape_problems(entry, meta)
        for problem in problems:
            found.setdefault(entry.id, []).append(f"{problem.field}: {problem.message}")
    if result.fatal is None:
        for entry_id, why in overlap_problems(entries):
            found.setdefault(entry_id, []).append(f"series_facets: {why}")
    result.problems = {k: "catalog: " + "; ".join(v) for k, v in found.items()}
    result.requests = reader.requests
    return result
