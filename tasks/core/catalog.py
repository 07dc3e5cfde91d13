"""The series catalog: which EIA route queries and v1 series ids the series flow fetches.

The default catalog is the versioned file `catalog.json` beside this module. An entry names a
route, a frequency, the data columns, and facet filters; the facets listed in `series_facets`
(plus the data column and frequency) identify one series among the rows a request returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tasks.core.frequencies import FREQUENCIES


class CatalogError(ValueError):
    """The catalog file is malformed; the message names the entry and the field."""


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One `/v2/<route>/data/` query: many series per request."""

    id: str
    route: str  # e.g. "electricity/retail-sales" (no leading /v2, no trailing /data)
    frequency: str  # an EIA frequency name, one of FREQUENCIES
    data: tuple[str, ...]  # EIA data columns, passed as data[]
    facets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # facets[<id>][] filters
    series_facets: tuple[str, ...] = ()  # facets that identify one series on this route
    area_facet: str | None = None  # facet whose value is the area (state, region, respondent)
    sector_facet: str | None = None  # facet whose value is the sector
    publication_lag_days: int | None = None  # how late EIA publishes a period (staleness monitor)
    initial_start: str | None = None  # first period fetched when the database has nothing yet
    description: str | None = None
    units: Mapping[str, str] = field(default_factory=dict)  # unit of each data column, per EIA's metadata


@dataclass(frozen=True, slots=True)
class Catalog:
    version: str
    entries: tuple[CatalogEntry, ...]
    series_ids: tuple[str, ...]  # v1 ids fetched through /v2/seriesid/<ID>

    def entry(self, entry_id: str) -> CatalogEntry:
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise CatalogError(f"catalog has no entry {entry_id!r}")


def _entry(raw: Mapping[str, Any]) -> CatalogEntry:
    ident = str(raw.get("id", "?"))
    try:
        frequency = str(raw["frequency"])
        if frequency not in FREQUENCIES:
            raise CatalogError(f"catalog entry {ident!r}: frequency {frequency!r} is not one of {FREQUENCIES}")
        facets = {str(k): tuple(str(v) for v in vs) for k, vs in dict(raw.get("facets", {})).items()}
        lag = raw.get("publication_lag_days")
        return CatalogEntry(
            id=str(raw["id"]),
            route=str(raw["route"]).strip("/"),
            frequency=frequency,
            data=tuple(str(c) for c in raw["data"]),
            facets=facets,
            series_facets=tuple(str(f) for f in raw.get("series_facets", ())),
            area_facet=raw.get("area_facet"),
            sector_facet=raw.get("sector_facet"),
            publication_lag_days=int(lag) if lag is not None else None,
            initial_start=raw.get("initial_start"),
            description=raw.get("description"),
            units={str(k): str(v) for k, v in dict(raw.get("units", {})).items()},
        )
    except KeyError as exc:
        raise CatalogError(f"catalog entry {ident!r} is missing the field {exc.args[0]!r}") from None


def entry_json(entry: CatalogEntry) -> dict[str, Any]:
    """An entry as the catalog file writes it (the inverse of parsing it); empty optional fields left out."""
    raw: dict[str, Any] = {
        "id": entry.id,
        "route": entry.route,
        "frequency": entry.frequency,
        "data": list(entry.data),
        "facets": {k: list(v) for k, v in entry.facets.items()},
        "series_facets": list(entry.series_facets),
        "area_facet": entry.area_facet,
        "sector_facet": entry.sector_facet,
        "units": dict(entry.units),
        "publication_lag_days": entry.publication_lag_days,
        "initial_start": entry.initial_start,
        "description": entry.description,
    }
    return {k: v for k, v in raw.items() if v not in (None, {}, [])}


def catalog_json(catalog: Catalog, description: str | None = None) -> dict[str, Any]:
    """A catalog as its file holds it."""
    raw: dict[str, Any] = {"version": catalog.version}
    if description:
        raw["description"] = description
    raw["entries"] = [entry_json(e) for e in catalog.entries]
    raw["series_ids"] = list(catalog.series_ids)
    return raw


def parse_catalog(raw: Mapping[str, Any]) -> Catalog:
    entries = tuple(_entry(e) for e in raw.get("entries", ()))
    ids = [e.id for e in entries]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise CatalogError(f"catalog entry ids must be unique; repeated: {', '.join(dupes)}")
    return Catalog(
        version=str(raw.get("version", "unversioned")),
        entries=entries,
        series_ids=tuple(str(s) for s in raw.get("series_ids", ())),
    )


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Loads a catalog file; without a path, the default catalog shipped with the package."""
    if path is None:
        text = resources.files("tasks.core").joinpath("catalog.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_catalog(json.loads(text))
