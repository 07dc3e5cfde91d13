"""The catalog's pure rules: which facets identify a series, which name an area or a sector, how facet
values are grouped into requests, and how many requests a fetch costs.

Pure: plain values in, plain values out, so each rule is tested on fixed numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Final

from tasks.core.catalog import CatalogEntry
from tasks.core.frequencies import BY_NAME, Months
from tasks.normalize.periods import PeriodError, parse_period

# Facet ids that name where a series is (first match in the route's facet order wins).
AREA_FACETS: Final = frozenset(
    {
        "stateid",
        "stateId",
        "stateID",
        "state",
        "location",
        "duoarea",
        "respondent",
        "stateRegionId",
        "countryRegionId",
        "regionId",
        "region",
        "plantStateId",
        "mineStateId",
        "subba",
        "fromba",
    }
)
SECTOR_FACETS: Final = frozenset({"sectorid", "sectorId", "sector"})
# Facets that a series facet determines: on the petroleum and natural-gas routes, `series` (the v1 id
# without its prefix) fixes the area, the product and the process, so they never split one series.
DETERMINED_BY: Final[Mapping[str, frozenset[str]]] = {"series": frozenset({"duoarea", "product", "process"})}
# Facets that describe a row, not a series: international's `dataFlagId` (why a value is missing) and
# AEO's `history` (HISTORY up to the base year, PROJECTION after it, within one series).
ROW_ATTRIBUTES: Final = frozenset({"dataFlagId", "history"})
PAGE_SIZE: Final = 5000
# A discovered entry's full history should fit in about this many pages: one request still covers
# many series, and a first run of one entry stays a short, retryable unit of work.
MAX_PAGES_PER_ENTRY: Final = 10


def determined(series_facets: Sequence[str]) -> frozenset[str]:
    """Facets fixed by the given series facets (see DETERMINED_BY)."""
    return frozenset().union(*(DETERMINED_BY.get(f, frozenset()) for f in series_facets))


def series_facets_of(route_facets: Sequence[str]) -> tuple[str, ...]:
    """The facets that identify one series on a route: all of them but those another one determines
    and the row attributes."""
    fixed = determined(route_facets) | ROW_ATTRIBUTES
    return tuple(f for f in route_facets if f not in fixed)


def area_facet_of(route_facets: Sequence[str]) -> str | None:
    return next((f for f in route_facets if f in AREA_FACETS), None)


def sector_facet_of(route_facets: Sequence[str]) -> str | None:
    return next((f for f in route_facets if f in SECTOR_FACETS), None)


def identity_problems(entry: CatalogEntry, route_facets: Sequence[str]) -> list[str]:
    """Why the entry's series facets would give two series one id (empty when they cannot).

    A facet of the route that is not a series facet (nor determined by one) splits the rows into
    several series unless the entry filters it to exactly one value.
    """
    problems = []
    if "period" in entry.series_facets:
        problems.append("'period' is not a facet: a period never belongs in a series id")
    fixed = determined(entry.series_facets) | ROW_ATTRIBUTES
    for facet in route_facets:
        if facet in entry.series_facets or facet in fixed:
            continue
        values = entry.facets.get(facet)
        if values is not None and len(set(values)) == 1:
            continue
        problems.append(
            f"facet {facet!r} is neither a series facet nor filtered to one value: rows of different "
            f"{facet!r} values would share one series id (add it to series_facets)"
        )
    return problems


def _meets(a: Sequence[str] | None, b: Sequence[str] | None) -> bool:
    return a is None or b is None or bool(set(a) & set(b))


def overlap_problems(entries: Sequence[CatalogEntry]) -> list[tuple[str, str]]:
    """(entry id, why) for each entry that would load a series an earlier entry already loads."""
    problems = []
    for i, later in enumerate(entries):
        for earlier in entries[:i]:
            if (later.route, later.frequency) != (earlier.route, earlier.frequency):
                continue
            shared = sorted(set(later.data) & set(earlier.data))
            if not shared or sorted(later.series_facets) != sorted(earlier.series_facets):
                continue
            if all(_meets(later.facets.get(f), earlier.facets.get(f)) for f in later.series_facets):
                problems.append(
                    (
                        later.id,
                        f"entry {earlier.id!r} already loads series of {later.route} {later.frequency} "
                        f"{', '.join(shared)} with the same {', '.join(sorted(later.series_facets)) or 'facets'}: "
                        "two series would share one id",
                    )
                )
                break
    return problems


def pages_for(rows: int, page_size: int = PAGE_SIZE) -> int:
    """Requests a paged fetch of `rows` rows sends: full pages, then the short page that ends it.

    `fetch_all_pages` stops on a short page (EIA's `total` is not trusted), so an exact multiple of
    the page size costs one request more, for the empty page.
    """
    return max(0, rows) // page_size + 1


def period_count(start: str, end: str, token_frequency: str, frequency: str) -> int | None:
    """Periods of `frequency` from the period holding `start` to the one holding `end` (tokens of
    `token_frequency`, as route metadata writes them); None when the tokens do not parse."""
    try:
        first = parse_period(start, token_frequency).start
        last = parse_period(end, token_frequency).start
    except PeriodError:
        return None
    length = BY_NAME[frequency].length
    if last < first:
        return 0
    if isinstance(length, Months):
        months = (last.year - first.year) * 12 + last.month - first.month
        return months // length.count + 1
    return int((last - first) / length) + 1


def window_periods(frequency: str) -> int:
    """Periods an incremental run re-fetches: the frequency's trailing window, plus the newest period."""
    spec = BY_NAME[frequency]
    length = spec.length
    if isinstance(length, Months):
        return math.ceil(spec.trailing_window / timedelta(days=30.436875 * length.count)) + 1
    return math.ceil(spec.trailing_window / length) + 1


def group_values(values: Sequence[str], rows_per_value: float, budget_rows: int) -> list[tuple[str, ...]]:
    """Consecutive groups of facet values, each holding at most `budget_rows` rows (and one value at least)."""
    per_group = max(1, int(budget_rows // rows_per_value)) if rows_per_value > 0 else len(values) or 1
    return [tuple(values[i : i + per_group]) for i in range(0, len(values), per_group)]
