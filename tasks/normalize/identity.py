"""Series identity, and the one place an Observation is built.

Route rows have no series id of their own: `route_series_id` derives a deterministic, readable one
from the route, data column, frequency and identifying facets, stable under dict ordering and
collision-free (facet values are percent-escaped). v1 ids (`/v2/seriesid/`, bulk files) are used
as they are.

`SeriesContext` holds what every observation of one series shares (id, unit and its canonical
mapping, area, description, metadata); `ResultBuilder` turns (context, period, parsed value) into
an Observation or a Rejection and drops repeats. The API and bulk normalizers both use them, so
the two paths cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from tasks.core.frequencies import BY_CODE, BY_NAME
from tasks.normalize.observation import (
    MAX_SERIES_ID_LENGTH,
    MAX_TEXT_LENGTH,
    NormalizeResult,
    Observation,
    Rejection,
)
from tasks.normalize.periods import Period
from tasks.normalize.units import lookup_unit

_isfinite: Final = math.isfinite  # bound once: observe runs per data point

ROUTE_ID_PREFIX: Final = "EIA2"

# Percent-escape the id's separators (and "%" itself) so distinct facet sets never share an id.
_ESCAPES: Final = str.maketrans({"%": "%25", ":": "%3A", ";": "%3B", "=": "%3D"})


def frequency_code(frequency: str) -> str:
    """The short code ("M", "HL", ...) of an EIA frequency name; a code is returned unchanged."""
    if frequency in BY_NAME:
        return BY_NAME[frequency].code
    if frequency in BY_CODE:
        return frequency
    raise ValueError(f"unknown frequency {frequency!r}; expected one of {tuple(BY_NAME)}")


def _escape(text: str) -> str:
    return text.translate(_ESCAPES)


def route_series_id(route: str, column: str, frequency: str, facets: Mapping[str, str]) -> str:
    """E.g. `EIA2:electricity/retail-sales:price:M:sectorid=ALL;stateid=US` (facets sorted by id)."""
    parts = ";".join(f"{_escape(str(k))}={_escape(str(v))}" for k, v in sorted(facets.items()))
    return f"{ROUTE_ID_PREFIX}:{_escape(route.strip('/'))}:{_escape(column)}:{frequency_code(frequency)}:{parts}"


@dataclass(frozen=True, slots=True)
class SeriesContext:
    """Everything the observations of one series share; build it with `series_context`."""

    series_id: str
    frequency: str  # EIA frequency name
    unit: str | None
    # From the unit table; all None when the unit is missing or unknown.
    canonical_unit: str | None
    canonical_currency: str | None
    conversion_factor: float | None
    area: str | None
    sector: str | None
    seasonal_adjustment: str | None
    description: str | None
    source: str
    dataset: str | None
    metadata: dict[str, Any] | None  # shared by all observations of the series: do not mutate

    def problem(self) -> tuple[str, str] | None:
        """Why no observation of this series can be stored, as (reason, detail), or None."""
        if len(self.series_id) > MAX_SERIES_ID_LENGTH:
            return (
                "series_id_too_long",
                f"series id is {len(self.series_id)} characters, longer than {MAX_SERIES_ID_LENGTH}",
            )
        for name in ("unit", "area", "sector", "seasonal_adjustment", "description"):
            text = getattr(self, name)
            if text is not None and len(text) > MAX_TEXT_LENGTH:
                return "field_too_long", f"{name} is {len(text)} characters, longer than {MAX_TEXT_LENGTH}"
        return None

    def observe(self, period: Period, value: float | None, raw_value: str | None, flag: str | None) -> Observation:
        """The observation of this series for one period and parsed value (see `parse_value`)."""
        factor = self.conversion_factor
        canonical_value: float | None = None
        if factor is not None and value is not None:
            canonical_value = value * factor
            if not _isfinite(canonical_value):  # a finite value can overflow when scaled
                canonical_value = None
        return Observation(
            self.series_id,
            period.start,
            period.end,
            period.raw,
            self.frequency,
            value,
            raw_value,
            flag,
            self.unit,
            self.canonical_unit,
            self.canonical_currency,
            factor,
            canonical_value,
            self.area,
            self.sector,
            self.seasonal_adjustment,
            self.description,
            self.source,
            self.dataset,
            self.metadata,
        )


def series_context(
    series_id: str,
    *,
    frequency: str,
    unit: str | None,
    source: str,
    dataset: str | None,
    area: str | None = None,
    sector: str | None = None,
    seasonal_adjustment: str | None = None,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> SeriesContext:
    """A series context with the unit looked up in the unit table (None when unknown)."""
    mapping = lookup_unit(unit)
    return SeriesContext(
        series_id=series_id,
        frequency=frequency,
        unit=unit,
        canonical_unit=None if mapping is None else mapping.canonical_unit,
        canonical_currency=None if mapping is None else mapping.canonical_currency,
        conversion_factor=None if mapping is None else mapping.conversion_factor,
        area=area,
        sector=sector,
        seasonal_adjustment=seasonal_adjustment,
        description=description,
        source=source,
        dataset=dataset,
        metadata=metadata,
    )


class ResultBuilder:
    """Collects observations and rejections for one normalizer call; the first of a repeat wins."""

    __slots__ = ("_append", "_seen", "result")

    def __init__(self) -> None:
        self.result = NormalizeResult()
        self._seen: set[tuple[str, datetime]] = set()
        self._append = self.result.observations.append  # bound once: accept runs per data point

    def accept(
        self,
        context: SeriesContext,
        period: Period,
        value: float | None,
        raw_value: str | None,
        flag: str | None,
    ) -> tuple[str, str] | None:
        """Adds the observation; or adds nothing and returns (reason, detail) for the caller to reject.

        Takes the parsed value as its parts (`parse_value_parts`): the bulk path calls this per point.
        """
        if flag is not None and raw_value is not None and len(raw_value) > MAX_TEXT_LENGTH:
            return "field_too_long", f"value is {len(raw_value)} characters, longer than {MAX_TEXT_LENGTH}"
        # Keyed on the UTC start: two tokens for the same instant would collide in the table's key.
        key = (context.series_id, period.start)
        seen = self._seen
        if key in seen:
            return (
                "duplicate_in_response",
                f"period {period.raw!r} ({period.start.isoformat()}) of {context.series_id} "
                "appeared earlier; the first occurrence is kept",
            )
        seen.add(key)
        self._append(context.observe(period, value, raw_value, flag))
        return None

    def reject(
        self,
        reason: str,
        detail: str,
        *,
        series_id: str | None,
        raw_period: str | None,
        raw_value: str | None,
        payload: dict[str, Any] | None,
    ) -> None:
        self.result.rejections.append(Rejection(reason, detail, series_id, raw_period, raw_value, payload))
