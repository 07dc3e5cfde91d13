"""When each series' next period is due, how late it is, and how many periods a series should hold.

Why it exists: "no new data" means different things per series. Hourly EIA-930 data appears within
a day or two, daily spot prices only on trading days, monthly data weeks after the month ends and
annual data most of a year later. A series' cadence is its frequency plus a publication lag (the
catalog entry's `publication_lag_days`, else the frequency table's `publication_lag`) plus an
optional grace; daily price series step over weekends and US exchange holidays. Everything is a
pure function of the newest loaded period and a given `now`, so the staleness monitor, the SLA
report (freshness and completeness) and the tests share one definition.

Conventions follow the observation record: a period is its UTC start; its end is the start of the
next calendar period (a business-day series' Friday ends on Saturday, its next period is Monday).
A period is due `lag + grace` after its end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final

from tasks.core.catalog import Catalog, CatalogEntry
from tasks.core.frequencies import BY_NAME, Months, Span
from tasks.monitoring.checks import Check

_ONE_DAY: Final = timedelta(days=1)


class CadenceError(ValueError):
    """A frequency the staleness model does not know; the message names it."""


# -- business days -----------------------------------------------------------------------------


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday (0 = Monday) of a month; n = -1 for the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + (month == 12), month % 12 + 1, 1) - _ONE_DAY
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """Exchange rule: a Saturday holiday is observed on Friday, a Sunday one on Monday."""
    if day.weekday() == 5:
        return day - _ONE_DAY
    if day.weekday() == 6:
        return day + _ONE_DAY
    return day


@lru_cache(maxsize=256)
def us_market_holidays(year: int) -> frozenset[date]:
    """US exchange holidays (NYSE/NYMEX rules), on which EIA's daily price series have no value."""
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # a Saturday New Year's Day is not moved back into December
        days.add(_observed(new_year))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    return frozenset(days)


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in us_market_holidays(day.year)


def business_days_between(first: date, last: date) -> int:
    """Business days in [first, last], both inclusive (0 when last < first)."""
    if last < first:
        return 0
    weeks, rest = divmod((last - first).days + 1, 7)
    count = weeks * 5 + sum(1 for i in range(rest) if (first + timedelta(days=i)).weekday() < 5)
    for year in range(first.year, last.year + 1):
        count -= sum(1 for h in us_market_holidays(year) if first <= h <= last and h.weekday() < 5)
    return count


# -- cadence -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often a series gets a new period and how long after a period ends EIA publishes it."""

    frequency: str
    lag: timedelta
    business_days: bool = False  # daily series that skip weekends and exchange holidays
    grace: timedelta = timedelta(0)  # extra slack on top of the lag (e.g. the ingestion schedule)

    def __post_init__(self) -> None:
        if self.frequency not in BY_NAME:
            raise CadenceError(f"frequency {self.frequency!r} has no staleness cadence")
        if self.business_days and self.frequency != "daily":
            raise CadenceError(f"business days apply to daily series only, not {self.frequency!r}")

    @property
    def delay(self) -> timedelta:
        return self.lag + self.grace

    @property
    def length(self) -> Span:
        """The frequency's period length: calendar months or a fixed stride."""
        return BY_NAME[self.frequency].length


def is_price_entry(entry: CatalogEntry) -> bool:
    """EIA's price routes (`…/pri/…`) and `price` columns: traded prices exist on trading days only."""
    return "pri" in entry.route.split("/") or "price" in entry.data


def cadence_for(
    frequency: str, *, lag_days: int | None = None, business_days: bool = False, grace: timedelta = timedelta(0)
) -> Cadence:
    if frequency not in BY_NAME:
        raise CadenceError(f"frequency {frequency!r} has no staleness cadence")
    lag = BY_NAME[frequency].publication_lag if lag_days is None else timedelta(days=lag_days)
    return Cadence(frequency, lag, business_days, grace)


def cadence_for_entry(entry: CatalogEntry, grace: timedelta = timedelta(0)) -> Cadence:
    """The entry's cadence: its frequency, its `publication_lag_days`, business days for daily prices."""
    return cadence_for(
        entry.frequency,
        lag_days=entry.publication_lag_days,
        business_days=entry.frequency == "daily" and is_price_entry(entry),
        grace=grace,
    )


# -- period arithmetic -------------------------------------------------------------------------


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def _month_index(moment: datetime) -> int:
    return moment.year * 12 + moment.month - 1


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def period_end(start: datetime, cadence: Cadence) -> datetime:
    """Exclusive end of the period starting at `start` (calendar length, also for business days)."""
    length = cadence.length
    return _add_months(start, length.count) if isinstance(length, Months) else start + length


def next_period(start: datetime, cadence: Cadence) -> datetime:
    """Start of the period after `start`: the next business day for business-day series."""
    if cadence.business_days:
        day = start.date() + _ONE_DAY
        while not is_business_day(day):
            day += _ONE_DAY
        return _midnight(day)
    return period_end(start, cadence)


def due_at(start: datetime, cadence: Cadence) -> datetime:
    """When the period starting at `start` should be loaded: its end plus lag plus grace."""
    return period_end(start, cadence) + cadence.delay


def latest_due_period(anchor: datetime, cadence: Cadence, now: datetime) -> datetime:
    """The newest period start (aligned with `anchor`) that is due by `now`; may precede `anchor`."""
    cutoff = now - cadence.delay  # a period is due once its end <= cutoff
    if cadence.business_days:
        day = (cutoff - _ONE_DAY).date()
        while not is_business_day(day):
            day -= _ONE_DAY
        return _midnight(day)
    length = cadence.length
    if not isinstance(length, Months):
        k = (cutoff - length - anchor) // length
        return anchor + k * length
    months = length.count
    k = (_month_index(cutoff) - _month_index(anchor)) // months
    candidate = _add_months(anchor, k * months)
    while _add_months(candidate, months) > cutoff:
        candidate = _add_months(candidate, -months)
    while _add_months(candidate, 2 * months) <= cutoff:
        candidate = _add_months(candidate, months)
    return candidate


def count_periods(first: datetime, last: datetime, cadence: Cadence) -> int:
    """Periods in [first, last] (both aligned period starts, inclusive); 0 when last < first."""
    if last < first:
        return 0
    if cadence.business_days:
        return business_days_between(first.date(), last.date())
    length = cadence.length
    if not isinstance(length, Months):
        return (last - first) // length + 1
    return (_month_index(last) - _month_index(first)) // length.count + 1


# -- staleness ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesExtent:
    """What the table holds for one series: its oldest and newest period."""

    series_id: str
    frequency: str
    dataset: str | None
    newest_period: datetime
    first_period: datetime | None = None


@dataclass(frozen=True, slots=True)
class Staleness:
    """One series' verdict. `lateness` is how long ago its next period became due (0 when fresh)."""

    series_id: str
    entry_id: str | None
    frequency: str
    newest_period: datetime | None  # None: the catalog entry has no data at all
    next_period: datetime | None
    due_at: datetime | None
    lateness: timedelta
    missing_periods: int

    @property
    def stale(self) -> bool:
        return self.newest_period is None or self.lateness > timedelta(0)

    @property
    def lateness_hours(self) -> float:
        return self.lateness.total_seconds() / 3600


def assess_series(
    series_id: str, newest: datetime, cadence: Cadence, now: datetime, *, entry_id: str | None = None
) -> Staleness:
    """Fresh while the period after `newest` is not yet due; otherwise stale by now - due."""
    upcoming = next_period(newest, cadence)
    due = due_at(upcoming, cadence)
    lateness = max(timedelta(0), now - due)
    missing = 0
    if lateness > timedelta(0):
        missing = count_periods(upcoming, latest_due_period(upcoming, cadence, now), cadence)
    return Staleness(series_id, entry_id, cadence.frequency, newest, upcoming, due, lateness, missing)


@dataclass(frozen=True, slots=True)
class StalenessReport:
    checked_at: datetime
    items: tuple[Staleness, ...]
    unknown_frequencies: tuple[str, ...] = ()

    @property
    def stale(self) -> list[Staleness]:
        """Stale series, latest first (entries without any data lead the list)."""
        late = [s for s in self.items if s.stale]
        return sorted(late, key=lambda s: (s.newest_period is not None, -s.lateness.total_seconds(), s.series_id))

    @property
    def fresh(self) -> list[Staleness]:
        return [s for s in self.items if not s.stale]


@dataclass(frozen=True, slots=True)
class CadenceMap:
    """Which cadence each loaded series follows, from the catalog (entries and v1 series ids)."""

    entries: tuple[tuple[CatalogEntry, Cadence], ...]
    series_ids: frozenset[str]
    grace: timedelta = timedelta(0)
    lag_overrides: Mapping[str, int] = field(default_factory=dict)  # entry id or series id -> lag days

    @classmethod
    def from_catalog(
        cls, catalog: Catalog, *, grace: timedelta = timedelta(0), lag_overrides: Mapping[str, int] | None = None
    ) -> CadenceMap:
        overrides = dict(lag_overrides or {})
        pairs = []
        for entry in catalog.entries:
            cadence = cadence_for_entry(entry, grace)
            if entry.id in overrides:
                cadence = Cadence(cadence.frequency, timedelta(days=overrides[entry.id]), cadence.business_days, grace)
            pairs.append((entry, cadence))
        return cls(tuple(pairs), frozenset(catalog.series_ids), grace, overrides)

    def match(self, series: SeriesExtent) -> tuple[str | None, Cadence] | None:
        """(entry id, cadence) for a loaded series, or None when the catalog does not cover it."""
        for entry, cadence in self.entries:
            if series.dataset == entry.route and series.frequency == entry.frequency:
                return entry.id, cadence
        if series.series_id in self.series_ids:
            return None, cadence_for(
                series.frequency, lag_days=self.lag_overrides.get(series.series_id), grace=self.grace
            )
        return None


def assess(
    cadences: CadenceMap,
    series: Iterable[SeriesExtent],
    now: datetime,
    *,
    include_uncataloged: bool = False,
) -> StalenessReport:
    """Every catalogued series' verdict, plus one `no data` item per catalog entry with no series."""
    items: list[Staleness] = []
    seen_entries: set[str] = set()
    unknown: set[str] = set()
    for s in series:
        matched = cadences.match(s)
        if matched is None:
            if not include_uncataloged:
                continue
            if s.frequency not in BY_NAME:
                unknown.add(s.frequency)
                continue
            matched = (None, cadence_for(s.frequency, grace=cadences.grace))
        entry_id, cadence = matched
        if entry_id is not None:
            seen_entries.add(entry_id)
        items.append(assess_series(s.series_id, s.newest_period, cadence, now, entry_id=entry_id))
    for entry, cadence in cadences.entries:
        if entry.id not in seen_entries:
            items.append(Staleness(f"entry:{entry.id}", entry.id, cadence.frequency, None, None, None, timedelta(0), 0))
    return StalenessReport(now, tuple(items), tuple(sorted(unknown)))


# -- completeness ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompletenessWindow:
    """The periods a series should hold: [first, last], and how many there are."""

    series_id: str
    first: datetime
    last: datetime
    expected: int


def completeness_window(series: SeriesExtent, cadence: Cadence, now: datetime) -> CompletenessWindow | None:
    """From the series' first period to the newest one due by `now`; None when nothing is due yet."""
    first = series.first_period or series.newest_period
    last = latest_due_period(first, cadence, now)
    expected = count_periods(first, last, cadence)
    if expected <= 0:
        return None
    return CompletenessWindow(series.series_id, first, last, expected)


@dataclass(frozen=True, slots=True)
class SeriesCompleteness:
    series_id: str
    expected: int
    received: int

    @property
    def ratio(self) -> float:
        # More periods than the calendar predicts (a holiday with a price) still counts as complete.
        return min(1.0, self.received / self.expected) if self.expected else 1.0


def overall_completeness(series: Sequence[SeriesCompleteness]) -> float | None:
    """Mean of per-series ratios (each series weighs the same); None without any series."""
    if not series:
        return None
    return sum(s.ratio for s in series) / len(series)


def markdown_report(report: StalenessReport, *, limit: int = 50) -> str:
    """The `eia_staleness_monitor` artifact: stale series, latest first, with how late each is."""
    stale = report.stale
    lines = [
        "# EIA series staleness",
        "",
        f"**As of:** {report.checked_at:%Y-%m-%d %H:%M} UTC  ",
        f"**Series checked:** {len(report.items)}  ",
        f"**Stale:** {len(stale)}",
    ]
    if stale:
        lines += [
            "",
            "| series | entry | frequency | newest period | due since (UTC) | late by (h) | missing periods |",
            "|---|---|---|---|---|---:|---:|",
        ]
        for s in stale[:limit]:
            newest = "no data" if s.newest_period is None else f"{s.newest_period:%Y-%m-%d %H:%M}"
            due = "-" if s.due_at is None else f"{s.due_at:%Y-%m-%d %H:%M}"
            late = "-" if s.newest_period is None else f"{s.lateness_hours:.1f}"
            lines.append(
                f"| `{s.series_id}` | {s.entry_id or '-'} | {s.frequency} | {newest} | {due} | {late} "
                f"| {s.missing_periods} |"
            )
        if len(stale) > limit:
            lines.append(f"\n… and {len(stale) - limit} more (see the table artifact).")
    if report.unknown_frequencies:
        lines += ["", f"Frequencies without a cadence (not judged): {', '.join(report.unknown_frequencies)}"]
    return "\n".join(lines) + "\n"


def table_rows(report: StalenessReport) -> list[dict[str, object]]:
    return [
        {
            "series": s.series_id,
            "entry": s.entry_id,
            "frequency": s.frequency,
            "newest_period": None if s.newest_period is None else s.newest_period.isoformat(),
            "due_at": None if s.due_at is None else s.due_at.isoformat(),
            "late_hours": round(s.lateness_hours, 2),
            "missing_periods": s.missing_periods,
            "stale": s.stale,
        }
        for s in report.stale
    ]


def staleness_checks(report: StalenessReport) -> list[Check]:
    """One check per series (so each series going stale or fresh again is one event) and the total."""
    stale = report.stale
    checks = [
        Check(
            "stale_series",
            bool(stale),
            "warning",
            float(len(stale)),
            0.0,
            f"{len(stale)} of {len(report.items)} series are overdue",
            {"series": [s.series_id for s in stale[:20]]},
        )
    ]
    for s in report.items:
        message = (
            f"catalog entry {s.entry_id} has no data"
            if s.newest_period is None
            else f"{s.series_id}: next {s.frequency} period due {s.due_at:%Y-%m-%d %H:%M} UTC, "
            f"late by {s.lateness_hours:.1f} h"
            if s.stale
            else f"{s.series_id}: fresh (next period due {s.due_at:%Y-%m-%d %H:%M} UTC)"
        )
        checks.append(
            Check(
                f"series:{s.series_id}",
                s.stale,
                "warning",
                round(s.lateness_hours, 3),
                0.0,
                message,
                {"entry": s.entry_id, "missing_periods": s.missing_periods},
            )
        )
    return checks
