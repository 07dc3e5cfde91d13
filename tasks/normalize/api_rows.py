"""EIA API v2 response rows → Observations and Rejections.

Two shapes arrive: `/v2/<route>/data/` rows (values as strings, one column per requested data
column, units in `<column>-units`, no series id) and `/v2/seriesid/<ID>` rows (numbers, integer
annual periods, `unitName`/`unit`, data flags). Every pair of input row and data column ends in
exactly one of the result's lists, so the run log can reconcile: a row that cannot be stored is rejected with
a stable reason code and the row itself as payload (the caller scrubs secrets before storing it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from tasks.core.catalog import CatalogEntry
from tasks.core.frequencies import FREQUENCIES
from tasks.normalize.identity import ResultBuilder, SeriesContext, route_series_id, series_context
from tasks.normalize.observation import MAX_SERIES_ID_LENGTH, SOURCE_API, NormalizeResult
from tasks.normalize.periods import Period, PeriodError, parse_period
from tasks.normalize.values import parse_value_parts

# Columns that describe a series in words, in order of preference.
DESCRIPTION_COLUMNS: Final = ("series-description", "seriesDescription", "seriesName", "series-name")
# Columns that state a seasonal adjustment (no sampled route has one; kept for the routes that do).
SEASONAL_ADJUSTMENT_COLUMNS: Final = ("seasonal-adjustment", "seasonalAdjustment", "seasonallyAdjusted")
# Unit columns of the `value` column besides `value-units`: `units` (natural gas, petroleum),
# `unit` (steo), `unitName` (international).
VALUE_UNIT_COLUMNS: Final = ("units", "unit", "unitName")
# seriesid rows: the unit, most descriptive first ("billion kilowatthours" before "BKWH").
SERIESID_UNIT_COLUMNS: Final = ("unitName", "unit", "units")
# seriesid row fields that are the observation itself, not context for metadata.
_SERIESID_NOT_METADATA: Final = frozenset(
    {"period", "value", "unitName", "unit", "units", "seriesId", "seriesDescription", "series-description"}
)

_PeriodOutcome = Period | tuple[str, str]


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def _first_text(row: Mapping[str, Any], columns: Sequence[str]) -> str | None:
    for column in columns:
        value = row.get(column)
        if value is not None and value != "":
            return _text(value)
    return None


def _plain(row: object) -> dict[str, Any]:
    """The payload of a rejected row: a plain dict (JSON-compatible where the row was)."""
    if isinstance(row, Mapping):
        return {str(k): v for k, v in row.items()}
    if row is None or isinstance(row, str | int | float | bool | list):
        return {"row": row}
    return {"row": repr(row)}


def _check_frequency(frequency: str) -> None:
    if frequency not in FREQUENCIES:
        raise ValueError(f"frequency {frequency!r} is not one of {FREQUENCIES}")


def _period(row: Mapping[str, Any], frequency: str) -> tuple[str | None, _PeriodOutcome]:
    """The raw period text and the parsed Period, or (reason, detail)."""
    raw = row.get("period")
    if raw is None or raw == "":
        return None, ("missing_period", "the row has no period")
    raw_text = _text(raw)
    try:
        return raw_text, parse_period(raw, frequency)
    except PeriodError as exc:
        return raw_text, ("bad_period", str(exc))


def _emit(
    builder: ResultBuilder,
    context: SeriesContext,
    raw_period: str | None,
    period: _PeriodOutcome,
    raw: object,
    payload: Mapping[str, Any],
) -> None:
    value, raw_value, flag = parse_value_parts(raw)
    problem = context.problem()
    if problem is None:
        problem = builder.accept(context, period, value, raw_value, flag) if isinstance(period, Period) else period
    if problem is not None:
        reason, detail = problem
        builder.reject(
            reason,
            detail,
            series_id=None if reason == "series_id_too_long" else context.series_id,
            raw_period=raw_period,
            raw_value=raw_value,
            payload=_plain(payload),
        )


def _unit(row: Mapping[str, Any], column: str) -> str | None:
    unit = _first_text(row, (f"{column}-units",))
    if unit is None and column == "value":
        unit = _first_text(row, VALUE_UNIT_COLUMNS)
    return unit


def _route_row(builder: ResultBuilder, row: Mapping[str, Any], entry: CatalogEntry, frequency: str) -> None:
    identifying = entry.series_facets or tuple(f for f in entry.facets if row.get(f) is not None)
    missing = [f for f in identifying if row.get(f) is None]
    facets = {f: _text(row[f]) for f in identifying if f not in missing}
    described = dict.fromkeys((*entry.facets, *entry.series_facets))
    all_facets = {f: _text(row[f]) for f in described if row.get(f) is not None}
    raw_period, period = _period(row, frequency)
    area = _first_text(row, (entry.area_facet,)) if entry.area_facet else None
    sector = _first_text(row, (entry.sector_facet,)) if entry.sector_facet else None
    description = _first_text(row, DESCRIPTION_COLUMNS)
    seasonal_adjustment = _first_text(row, SEASONAL_ADJUSTMENT_COLUMNS)
    for column in entry.data:
        if missing:
            builder.reject(
                "missing_series_id",
                f"the row lacks the series facet(s) {', '.join(missing)} of {entry.route}",
                series_id=None,
                raw_period=raw_period,
                raw_value=parse_value_parts(row.get(column))[1],
                payload=_plain(row),
            )
            continue
        series_id = route_series_id(entry.route, column, frequency, facets)
        if column not in row:
            builder.reject(
                "bad_row",
                f"the row has no data column {column!r}",
                series_id=series_id if len(series_id) <= MAX_SERIES_ID_LENGTH else None,
                raw_period=raw_period,
                raw_value=None,
                payload=_plain(row),
            )
            continue
        context = series_context(
            series_id,
            frequency=frequency,
            unit=_unit(row, column),
            source=SOURCE_API,
            dataset=entry.route,
            area=area,
            sector=sector,
            seasonal_adjustment=seasonal_adjustment,
            description=description,
            metadata={"route": entry.route, "facets": all_facets, "column": column},
        )
        _emit(builder, context, raw_period, period, row[column], row)


def normalize_route_rows(
    rows: Sequence[Mapping[str, Any]], entry: CatalogEntry, *, frequency: str | None = None
) -> NormalizeResult:
    """Normalizes `/v2/<route>/data/` rows: one observation per row and data column of the entry."""
    freq = frequency or entry.frequency
    _check_frequency(freq)
    builder = ResultBuilder()
    for row in rows:
        if isinstance(row, Mapping):
            _route_row(builder, row, entry, freq)
            continue
        for _column in entry.data:
            builder.reject(
                "bad_row",
                f"the row is a {type(row).__name__}, not an object",
                series_id=None,
                raw_period=None,
                raw_value=None,
                payload=_plain(row),
            )
    return builder.result


def _seriesid_metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    """Descriptive scalar fields (productName, dataFlagId, ...), without nulls."""
    return {
        str(k): v
        for k, v in row.items()
        if k not in _SERIESID_NOT_METADATA and v is not None and isinstance(v, str | int | float)
    }


def normalize_seriesid_rows(
    series_id: str, rows: Sequence[Mapping[str, Any]], *, frequency: str, description: str | None = None
) -> NormalizeResult:
    """Normalizes `/v2/seriesid/<ID>` rows; the v1 id is the series id, its prefix the dataset."""
    _check_frequency(frequency)
    builder = ResultBuilder()
    # "ELEC.GEN.ALL-US-99.M" → "ELEC": the same dataset code the bulk file of that id carries.
    dataset = series_id.split(".", 1)[0] if "." in series_id else None
    for row in rows:
        if not isinstance(row, Mapping) or "value" not in row:
            builder.reject(
                "bad_row",
                "the row has no value" if isinstance(row, Mapping) else f"the row is a {type(row).__name__}",
                series_id=series_id if len(series_id) <= MAX_SERIES_ID_LENGTH else None,
                raw_period=_text(row["period"]) if isinstance(row, Mapping) and "period" in row else None,
                raw_value=None,
                payload=_plain(row),
            )
            continue
        raw_period, period = _period(row, frequency)
        context = series_context(
            series_id,
            frequency=frequency,
            unit=_first_text(row, SERIESID_UNIT_COLUMNS),
            source=SOURCE_API,
            dataset=dataset,
            description=description or _first_text(row, DESCRIPTION_COLUMNS),
            metadata=_seriesid_metadata(row) or None,
        )
        _emit(builder, context, raw_period, period, row["value"], row)
    return builder.result
