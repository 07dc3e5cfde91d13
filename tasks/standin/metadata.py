"""Route metadata, facet values and route children, in EIA's real shapes, for the routes the stand-in serves.

EIA answers three kinds of metadata request besides `/data`:
- `GET /v2/<path>` of a branch: `{"id", "name", "description", "routes": [{"id", "name", "description"}]}`;
- `GET /v2/<route>` of a data route: frequencies (with format masks), facets, data columns (with
  units), `startPeriod`/`endPeriod`, `defaultFrequency` (the real samples `fc_v2_meta_*.json`);
- `GET /v2/<route>/facet/<id>`: `{"totalFacets": n, "facets": [{"id", "name", "alias"}]}`, the values
  EIA lists for the facet (and `GET /v2/<route>/facet`: the route's facets).

A route with a real metadata sample is described by the sample as it is; any other route gets
metadata derived from the rows it serves (frequencies, facets and columns over all its rows). Facet
values always come from the rows, with the name from the row's descriptive column ("stateDescription",
"respondent-name", ...), as EIA's own lists pair an id with a name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from tasks.standin.data import ReplayDataset, RouteData, data_and_unit_columns, data_columns

# Keys that describe a facet value or a unit, never a facet themselves.
_DESCRIPTIVE_SUFFIXES: Final = ("-name", "Name", "-description", "Description", "units", "unit")
# Rows read per route to learn its columns (as the stand-in's `/data` check does).
_SCAN: Final = 1000
# Where a facet's value name is, when the row names it in a column of another name.
_NAME_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "stateid": ("stateDescription", "stateName"),
    "location": ("stateDescription",),
    "sectorid": ("sectorName", "sectorDescription"),
    "fueltypeid": ("fuelTypeDescription",),
    "duoarea": ("area-name",),
    "series": ("series-description",),
    "seriesId": ("seriesDescription", "seriesName"),
    "msn": ("seriesDescription",),
    "fueltype": ("type-name",),
    "type": ("type-name",),
}


def facet_path(path: str) -> tuple[str, str | None] | None:
    """(route, facet id) for `<route>/facet/<id>`, (route, None) for `<route>/facet`; else None."""
    head, sep, tail = path.strip("/").rpartition("/facet/")
    if sep and tail and "/" not in tail:
        return head, tail
    if path.strip("/").endswith("/facet"):
        return path.strip("/").removesuffix("/facet"), None
    return None


def _scan(choices: Iterable[RouteData]) -> list[dict[str, Any]]:
    # Rows that are not objects (hostile-input tests serve some) describe nothing.
    return [row for data in choices for row in data.rows[:_SCAN] if isinstance(row, dict)]


def _facet_ids(rows: list[dict[str, Any]]) -> list[str]:
    ids: dict[str, None] = {}
    for row in rows:
        values = data_and_unit_columns(row)
        for key in row:
            if key != "period" and key not in values and not key.endswith(_DESCRIPTIVE_SUFFIXES):
                ids.setdefault(key, None)
    return list(ids)


def route_facet_ids(dataset: ReplayDataset, route: str) -> list[str] | None:
    """The facet ids of a served route: its metadata sample's, else its rows'; None for no such route."""
    stored = dataset.route_meta.get(route)
    if stored is not None:
        return [str(f["id"]) for f in stored["response"].get("facets", [])]
    choices = dataset.routes.get(route)
    return _facet_ids(_scan(choices)) if choices else None


def derived_metadata(route: str, choices: list[RouteData]) -> dict[str, Any]:
    """Route metadata in EIA's shape for a route without a real metadata sample, from all its rows."""
    rows = _scan(choices)
    first = choices[0]
    units: dict[str, Any] = {}
    for row in rows:
        for column in data_columns(row):
            if units.get(column) is None:
                units[column] = row.get(f"{column}-units")
    periods = [str(r.get("period")) for r in first.rows if isinstance(r, dict)]
    response: dict[str, Any] = {
        "id": route.rsplit("/", 1)[-1],
        "name": route,
        "frequency": [{"id": d.frequency, "format": d.date_format} for d in choices],
        "facets": [{"id": f, "description": f} for f in _facet_ids(rows)],
        "data": {c: ({"units": u} if u else {}) for c, u in units.items()},
        "startPeriod": min(periods, default=None),
        "endPeriod": max(periods, default=None),
        "defaultDateFormat": first.date_format,
        "defaultFrequency": first.frequency,
    }
    if first.description is not None:
        response["description"] = first.description
    return response


def _value_name(row: dict[str, Any], facet: str) -> str | None:
    stem = facet.removesuffix("id").removesuffix("Id")
    candidates = (
        *_NAME_COLUMNS.get(facet, ()),
        f"{facet}-name",
        f"{facet}Name",
        f"{facet}Description",
        f"{stem}Name",
        f"{stem}Description",
    )
    for key in candidates:
        value = row.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def facet_values(dataset: ReplayDataset, route: str, facet: str) -> dict[str, Any] | None:
    """`response` of `GET /v2/<route>/facet/<facet>`: every value the route's rows hold; None if unknown."""
    known = route_facet_ids(dataset, route)
    if known is None or facet not in known:
        return None
    names: dict[str, str | None] = {}
    for data in dataset.routes.get(route, []):
        for row in data.rows:
            value = row.get(facet) if isinstance(row, dict) else None
            if value is None:
                continue
            key = str(value)
            if names.get(key) is None:
                names[key] = _value_name(row, facet)
    facets = [
        {"id": value, "name": name or value, "alias": f"({value}) {name or value}"}
        for value, name in sorted(names.items())
    ]
    return {"totalFacets": len(facets), "facets": facets}


def facet_list(dataset: ReplayDataset, route: str) -> dict[str, Any] | None:
    """`response` of `GET /v2/<route>/facet`: the route's facets; None for no such route."""
    stored = dataset.route_meta.get(route)
    if stored is not None:
        facets = [{"id": f["id"], "description": f.get("description", f["id"])} for f in stored["response"]["facets"]]
        return {"totalFacets": len(facets), "facets": facets}
    known = route_facet_ids(dataset, route)
    if known is None:
        return None
    return {"totalFacets": len(known), "facets": [{"id": f, "description": f} for f in known]}


def served_routes(dataset: ReplayDataset) -> list[str]:
    """Every data route the stand-in answers for: routes with rows and routes with a metadata sample."""
    return sorted({*dataset.routes, *dataset.route_meta})


def children(dataset: ReplayDataset, path: str) -> dict[str, Any] | None:
    """`response` of a branch `GET /v2/<path>`: its child routes; None when nothing lies below it."""
    prefix = f"{path}/" if path else ""
    names = sorted({r[len(prefix) :].split("/")[0] for r in served_routes(dataset) if r.startswith(prefix)})
    if not names:
        return None
    ident = path.rsplit("/", 1)[-1] or "root"
    return {
        "id": ident,
        "name": ident,
        "description": f"EIA stand-in routes under /v2/{path}".rstrip("/"),
        "routes": [{"id": child, "name": child, "description": child} for child in names],
    }
