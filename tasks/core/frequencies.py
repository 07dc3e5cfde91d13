"""The frequency table: everything the pipeline knows about an EIA frequency, written once.

Why it exists: a frequency is more than a name. It has a one-letter code in bulk files and v1
series ids, a length (calendar months, or a fixed stride in UTC), a token shape in API responses and
another in bulk files, a tolerance for periods that start in the future, a freshness allowance, a
trailing window that incremental runs re-fetch, and EIA's usual publication lag. The period parser
(`tasks/normalize/periods.py`), series identity, the quality rules, the staleness model and the
request planner all read these records, so they cannot disagree.

Pure: the standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Final, TypeAlias


@dataclass(frozen=True, slots=True)
class Months:
    """A span of calendar months: how many days it holds depends on where (in UTC) it starts."""

    count: int


# A span of time: calendar months, or a fixed duration.
Span: TypeAlias = Months | timedelta

_HOUR: Final = timedelta(hours=1)
_DAY: Final = timedelta(hours=24)  # a fixed stride: 24 hours, whatever a time zone's DST does
_YEAR_HOURS: Final = 365.2425 * 24  # the Gregorian average


@dataclass(frozen=True, slots=True)
class Frequency:
    """One EIA frequency and what it means to every part of the pipeline."""

    name: str  # EIA's name: the API's `frequency`, Observation.frequency ("monthly")
    code: str  # bulk files' `f`, v1 series ids' suffix and route series ids' frequency ("M")
    length: Span  # period_end = period + length, in UTC
    alignment: Span  # a period starts a whole number of these after a UTC new year / midnight
    api_shape: str  # the API v2 period token ("YYYY-MM"); parsed and formatted from this text
    bulk_shape: str  # the bulk-file period token ("YYYYMM")
    future_tolerance: Span  # how far past now a period may start (STEO forecasts run years ahead)
    freshness: Span  # how old a series' newest period_end may be before the freshness rule warns
    trailing_window: timedelta  # how far behind the watermark an incremental run re-fetches (revisions)
    publication_lag: timedelta  # how long after a period ends EIA normally has it out (staleness)

    @property
    def calendar(self) -> bool:
        """True for month-based lengths, which need UTC calendar arithmetic (not a fixed stride)."""
        return isinstance(self.length, Months)

    @property
    def per_year(self) -> float:
        """Periods in an average year: how many rows a year of one series holds."""
        if isinstance(self.length, Months):
            return 12 / self.length.count
        return _YEAR_HOURS / (self.length / _HOUR)


# Future tolerance: sub-daily data is near real time, so a period days ahead is a parse error. EIA's
# Short-Term Energy Outlook (STEO) publishes monthly, quarterly and annual *forecasts* about two years
# ahead, so those frequencies allow three years. Freshness: EIA's publication lags (hourly EIA-930
# within a day; monthly surveys 2-4 months; international and SEDS annual data about two years) plus
# headroom; only a warning, because backfills of old periods are legitimate. Publication lag: the
# staleness model's default when a catalog entry names no `publication_lag_days`.
# Weekly periods only need to start at midnight: EIA's weeks end on different weekdays by survey.
FREQUENCY_TABLE: Final[tuple[Frequency, ...]] = (
    Frequency(
        name="annual",
        code="A",
        length=Months(12),
        alignment=Months(12),
        api_shape="YYYY",
        bulk_shape="YYYY",
        future_tolerance=Months(36),
        freshness=Months(36),
        trailing_window=timedelta(days=3 * 366),
        publication_lag=timedelta(days=365),
    ),
    Frequency(
        name="quarterly",
        code="Q",
        length=Months(3),
        alignment=Months(3),
        api_shape="YYYY-QN",
        bulk_shape="YYYYQN",
        future_tolerance=Months(36),
        freshness=Months(15),
        trailing_window=timedelta(days=366),
        publication_lag=timedelta(days=120),
    ),
    Frequency(
        name="monthly",
        code="M",
        length=Months(1),
        alignment=Months(1),
        api_shape="YYYY-MM",
        bulk_shape="YYYYMM",
        future_tolerance=Months(36),
        freshness=Months(12),
        trailing_window=timedelta(days=186),
        publication_lag=timedelta(days=60),
    ),
    Frequency(
        name="weekly",
        code="W",
        length=7 * _DAY,
        alignment=_DAY,
        api_shape="YYYY-MM-DD",
        bulk_shape="YYYYMMDD",
        future_tolerance=timedelta(days=14),
        freshness=timedelta(days=35),
        trailing_window=timedelta(weeks=8),
        publication_lag=timedelta(days=10),
    ),
    Frequency(
        name="daily",
        code="D",
        length=_DAY,
        alignment=_DAY,
        api_shape="YYYY-MM-DD",
        bulk_shape="YYYYMMDD",
        future_tolerance=timedelta(days=7),
        freshness=timedelta(days=21),
        trailing_window=timedelta(days=14),
        publication_lag=timedelta(days=7),
    ),
    Frequency(
        name="hourly",
        code="H",
        length=_HOUR,
        alignment=_HOUR,
        api_shape="YYYY-MM-DDTHH",
        bulk_shape="YYYYMMDDTHHZ",
        future_tolerance=timedelta(days=2),
        freshness=timedelta(days=7),
        trailing_window=timedelta(days=3),
        publication_lag=timedelta(days=2),
    ),
    Frequency(
        name="local-hourly",
        code="HL",
        length=_HOUR,
        alignment=_HOUR,
        api_shape="YYYY-MM-DDTHH±HH",
        bulk_shape="YYYYMMDDTHH±HH",
        future_tolerance=timedelta(days=2),
        freshness=timedelta(days=7),
        trailing_window=timedelta(days=3),
        publication_lag=timedelta(days=2),
    ),
)

# Frequencies the pipeline understands, by EIA name, and the bulk/v1 codes mapped to them.
FREQUENCIES: Final[tuple[str, ...]] = tuple(f.name for f in FREQUENCY_TABLE)
BY_NAME: Final[Mapping[str, Frequency]] = MappingProxyType({f.name: f for f in FREQUENCY_TABLE})
BY_CODE: Final[Mapping[str, Frequency]] = MappingProxyType({f.code: f for f in FREQUENCY_TABLE})
BULK_FREQUENCY_CODES: Final[Mapping[str, str]] = MappingProxyType({f.code: f.name for f in FREQUENCY_TABLE})
# Most rows per year first (a year of one hourly series is 8,760 rows, of a monthly one 12); ties keep
# the table's order.
BY_VOLUME: Final[tuple[Frequency, ...]] = tuple(sorted(FREQUENCY_TABLE, key=lambda f: -f.per_year))

if len(BY_NAME) != len(FREQUENCY_TABLE) or len(BY_CODE) != len(FREQUENCY_TABLE):  # pragma: no cover
    raise RuntimeError("frequency names and codes must be unique")
