"""One line of an EIA bulk file (`<DATASET>.txt` inside `<DATASET>.zip`) → metadata + observations.

A bulk file is newline-delimited JSON: series lines (v1 `series_id`, frequency code `f`, `units`,
`data: [[period, value], ...]` newest first, `data` sometimes null) followed by category lines
(`category_id`, `parent_category_id`, `name`, `notes`, `childseries`). Archives hold millions of
points, so everything per series (frequency, unit mapping, metadata dict) is worked out once per
line and each point costs a cached period lookup, a value parse and one Observation.

A line that cannot be read at all becomes one line-level Rejection; a bad point inside a good
series line is rejected on its own, so the rest of the series still loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from tasks.normalize.identity import ResultBuilder, series_context
from tasks.normalize.observation import (
    BULK_FREQUENCY_CODES,
    MAX_SERIES_ID_LENGTH,
    SOURCE_BULK,
    NormalizeResult,
)
from tasks.normalize.periods import PeriodError, parse_bulk_period
from tasks.normalize.values import parse_value_parts

# How much of an unreadable line is kept in its rejection's payload.
MAX_LINE_PAYLOAD: Final = 2000

# Series-line keys that have their own SeriesMeta field; the rest go to SeriesMeta.extra.
_META_KEYS: Final = frozenset(
    {
        "series_id",
        "name",
        "units",
        "f",
        "description",
        "source",
        "copyright",
        "geography",
        "iso3166",
        "lat",
        "lon",
        "last_updated",
        "data",
    }
)


@dataclass(frozen=True, slots=True)
class SeriesMeta:
    """The descriptive part of a series line (everything but the data points)."""

    series_id: str
    name: str | None
    units: str | None
    frequency: str  # EIA frequency name ("monthly"), from the bulk code `f`
    description: str | None
    source: str | None
    copyright: str | None
    geography: str | None
    iso3166: str | None
    latitude: float | None
    longitude: float | None
    last_updated: str | None
    dataset: str
    extra: dict[str, Any]  # the line's other keys: geoset_id, start, end, unitsshort, f, ...


@dataclass(frozen=True, slots=True)
class Category:
    """A category line: a node of EIA's category tree and the series filed under it."""

    category_id: int
    parent_category_id: int | None
    name: str
    notes: str | None
    childseries: tuple[str, ...]


@dataclass(slots=True)
class BulkLine:
    """The outcome of one line: a series (with observations), a category, or a rejected line."""

    kind: Literal["series", "category", "rejected"]
    meta: SeriesMeta | None
    category: Category | None
    result: NormalizeResult


class _BadLine(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _optional_text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _coordinate(value: object, limit: float) -> float | None:
    """A latitude/longitude ("47.6097" in bulk files) as a float; None when absent or out of range."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if -limit <= number <= limit else None  # the comparison also rejects NaN


def _category_id(value: object, key: str, *, required: bool) -> int | None:
    if value is None or value == "":
        if required:
            raise _BadLine("bad_line", f"category line has no {key}")
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise _BadLine("bad_line", f"category line {key} {value!r} is not an integer")


def _category(obj: dict[str, Any]) -> Category:
    category_id = _category_id(obj.get("category_id"), "category_id", required=True)
    assert category_id is not None  # required=True never returns None
    children = obj.get("childseries") or []
    if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
        raise _BadLine("bad_line", "category line childseries is not a list of series ids")
    return Category(
        category_id=category_id,
        parent_category_id=_category_id(obj.get("parent_category_id"), "parent_category_id", required=False),
        name=_optional_text(obj, "name") or "",
        notes=_optional_text(obj, "notes"),
        childseries=tuple(children),
    )


def _meta(obj: dict[str, Any], series_id: str, frequency: str, dataset: str) -> SeriesMeta:
    return SeriesMeta(
        series_id=series_id,
        name=_optional_text(obj, "name"),
        units=_optional_text(obj, "units"),
        frequency=frequency,
        description=_optional_text(obj, "description"),
        source=_optional_text(obj, "source"),
        copyright=_optional_text(obj, "copyright"),
        geography=_optional_text(obj, "geography"),
        iso3166=_optional_text(obj, "iso3166"),
        latitude=_coordinate(obj.get("lat"), 90.0),
        longitude=_coordinate(obj.get("lon"), 180.0),
        last_updated=_optional_text(obj, "last_updated"),
        dataset=dataset,
        extra={k: v for k, v in obj.items() if k not in _META_KEYS or k == "f"},
    )


def _series(obj: dict[str, Any], dataset: str) -> BulkLine:
    series_id = obj.get("series_id")
    if not isinstance(series_id, str) or not series_id:
        raise _BadLine("missing_series_id", "series line has no series_id")
    if len(series_id) > MAX_SERIES_ID_LENGTH:
        raise _BadLine(
            "series_id_too_long",
            f"series id is {len(series_id)} characters, longer than {MAX_SERIES_ID_LENGTH}",
        )
    code = obj.get("f")
    if not isinstance(code, str) or code not in BULK_FREQUENCY_CODES:
        raise _BadLine("bad_line", f"series {series_id}: unknown frequency code {code!r}")
    data = obj.get("data")
    if data is not None and not isinstance(data, list):
        raise _BadLine("bad_line", f"series {series_id}: data is a {type(data).__name__}, not a list")
    meta = _meta(obj, series_id, BULK_FREQUENCY_CODES[code], dataset)
    metadata: dict[str, Any] = {"name": meta.name, "geography": meta.geography}
    if meta.latitude is not None:
        metadata["lat"] = meta.latitude
    if meta.longitude is not None:
        metadata["lon"] = meta.longitude
    context = series_context(
        series_id,
        frequency=meta.frequency,
        unit=meta.units,
        source=SOURCE_BULK,
        dataset=dataset,
        area=meta.geography,
        description=meta.description or meta.name,
        metadata=metadata,
    )
    builder = ResultBuilder()
    line = BulkLine("series", meta, None, builder.result)
    if not data:
        return line
    problem = context.problem()
    # The per-point loop: keep it lean (bulk archives hold tens of millions of points).
    accept, reject = builder.accept, builder.reject
    parse_period, parse_value = parse_bulk_period, parse_value_parts  # locals: looked up per point
    outcome: tuple[str, str] | None
    for point in data:
        if problem is not None:
            outcome = problem
        elif type(point) is not list or len(point) != 2:
            outcome = ("bad_data_point", f"data point {point!r:.200} is not a [period, value] pair")
        else:
            try:
                period = parse_period(point[0], code)
            except PeriodError as exc:
                outcome = ("bad_period", str(exc))
            else:
                outcome = accept(context, period, *parse_value(point[1]))
                if outcome is None:
                    continue
        pair = type(point) is list and len(point) == 2
        reject(
            *outcome,
            series_id=series_id,
            raw_period=_point_text(point[0]) if pair else None,
            raw_value=parse_value(point[1])[1] if pair else None,
            payload={"series_id": series_id, "point": point},
        )
    return line


def _point_text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)


def rejected_line(reason: str, detail: str, payload: dict[str, Any]) -> BulkLine:
    """A line that cannot be read at all: one line-level Rejection whose payload keeps what is shown of it.

    The bulk loader uses it too, for lines it refuses before parsing (too long, holding `\\u0000`).
    """
    builder = ResultBuilder()
    builder.reject(reason, detail, series_id=None, raw_period=None, raw_value=None, payload=payload)
    return BulkLine("rejected", None, None, builder.result)


def _rejected(reason: str, detail: str, text: str) -> BulkLine:
    return rejected_line(reason, detail, {"line": text[:MAX_LINE_PAYLOAD]})


def parse_bulk_line(line: str | bytes, dataset: str) -> BulkLine:
    """Parses one bulk-file line of `dataset` ("ELEC", "NG", ...)."""
    if isinstance(line, bytes | bytearray):
        try:
            text = bytes(line).decode("utf-8")
        except UnicodeDecodeError as exc:
            return _rejected(
                "invalid_utf8",
                f"line is not UTF-8: {exc.reason} at byte {exc.start}",
                line.decode("utf-8", "replace"),
            )
    else:
        text = line
    if text.startswith("\ufeff"):  # a byte-order mark before a file's first line is not JSON
        text = text[1:]
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        return _rejected("invalid_json", f"line is not JSON: {exc}", text)
    if not isinstance(obj, dict):
        return _rejected("bad_line", f"line is a JSON {type(obj).__name__}, not an object", text)
    try:
        if "series_id" not in obj and "category_id" in obj:
            return BulkLine("category", None, _category(obj), NormalizeResult())
        return _series(obj, dataset)
    except _BadLine as exc:
        return _rejected(exc.reason, exc.detail, text)
