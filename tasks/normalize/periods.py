"""EIA period tokens → half-open UTC intervals [start, end), strictly validated per frequency.

EIA sends periods as text whose shape depends on the frequency ("2024", "2024-Q1", "2024-01",
"2024-01-05", "2024-03-01T05", "2023-03-20T00-07") and, in bulk files, in a compact form
("2021Q4", "202102", "20220305T05Z", "20220304T23-06"). A `DATE` cannot hold sub-daily data,
so every period becomes a UTC start and exclusive end plus the raw token. The frequency decides
which shape is legal: a token of the wrong shape or an impossible date raises `PeriodError`
(a `ValueError`), never another exception, so callers can quarantine the row.

Parsing is cached: a bulk archive repeats the same few thousand tokens millions of times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

from tasks.normalize.observation import BULK_FREQUENCY_CODES, FREQUENCIES

_ONE_HOUR: Final = timedelta(hours=1)
_ONE_DAY: Final = timedelta(days=1)
_ONE_WEEK: Final = timedelta(days=7)
# Real UTC offsets lie within -12..+14 hours; EIA-930 uses North American zones only.
_MAX_OFFSET_HOURS: Final = 14
_CACHE_SIZE: Final = 1 << 16

# Human-readable expected shapes, used in error messages.
_API_SHAPES: Final = {
    "annual": "YYYY",
    "quarterly": "YYYY-QN",
    "monthly": "YYYY-MM",
    "weekly": "YYYY-MM-DD",
    "daily": "YYYY-MM-DD",
    "hourly": "YYYY-MM-DDTHH",
    "local-hourly": "YYYY-MM-DDTHH±HH",
}
_BULK_SHAPES: Final = {
    "A": "YYYY",
    "Q": "YYYYQN",
    "M": "YYYYMM",
    "W": "YYYYMMDD",
    "D": "YYYYMMDD",
    "H": "YYYYMMDDTHHZ",
    "HL": "YYYYMMDDTHH±HH",
}


@dataclass(frozen=True, slots=True)
class Period:
    """A period as a half-open UTC interval, with the token exactly as EIA sent it."""

    start: datetime  # timezone-aware, UTC
    end: datetime  # exclusive, timezone-aware, UTC
    raw: str


class PeriodError(ValueError):
    """A period token that is malformed, impossible, or of the wrong shape for its frequency."""


class _Invalid(Exception):
    """Internal: carries the reason a token is invalid; turned into PeriodError with context."""


def _digits(text: str) -> int:
    # str.isdigit() accepts non-ASCII digits ("²") that int() rejects, hence isascii() too.
    if not (text.isascii() and text.isdigit()):
        raise _Invalid(f"{text!r} is not a number")
    return int(text)


def _year(text: str) -> int:
    year = _digits(text)
    if year < 1 or year > 9998:  # 9999 has no representable exclusive end
        raise _Invalid(f"year {year} is out of range")
    return year


def _month(text: str) -> int:
    month = _digits(text)
    if not 1 <= month <= 12:
        raise _Invalid(f"month {month} does not exist")
    return month


def _hour(text: str) -> int:
    hour = _digits(text)
    if hour > 23:
        raise _Invalid(f"hour {hour} does not exist")
    return hour


def _offset(sign: str, text: str) -> timedelta:
    if sign not in "+-" or len(sign) != 1:
        raise _Invalid(f"UTC offset must start with + or -, not {sign!r}")
    hours = _digits(text)
    if hours > _MAX_OFFSET_HOURS:
        raise _Invalid(f"UTC offset {sign}{text} is out of range")
    return timedelta(hours=-hours if sign == "-" else hours)


def _day_start(year: int, month: int, day: int) -> datetime:
    try:
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        raise _Invalid(f"{year:04d}-{month:02d}-{day:02d} is not a calendar date") from None


def _annual(raw: str, year_text: str) -> Period:
    year = _year(year_text)
    return Period(datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC), raw)


def _months(raw: str, year: int, month: int, count: int) -> Period:
    end_index = month - 1 + count  # months since January of `year`
    return Period(
        datetime(year, month, 1, tzinfo=UTC),
        datetime(year + end_index // 12, end_index % 12 + 1, 1, tzinfo=UTC),
        raw,
    )


def _quarterly(raw: str, year_text: str, quarter_text: str) -> Period:
    year = _year(year_text)
    quarter = _digits(quarter_text)
    if not 1 <= quarter <= 4:
        raise _Invalid(f"quarter {quarter} does not exist")
    return _months(raw, year, 3 * quarter - 2, 3)


def _monthly(raw: str, year_text: str, month_text: str) -> Period:
    return _months(raw, _year(year_text), _month(month_text), 1)


def _days(raw: str, year_text: str, month_text: str, day_text: str, length: timedelta) -> Period:
    start = _day_start(_year(year_text), _month(month_text), _digits(day_text))
    return Period(start, start + length, raw)


def _hourly(raw: str, year_text: str, month_text: str, day_text: str, hour_text: str, offset: timedelta) -> Period:
    day = _day_start(_year(year_text), _month(month_text), _digits(day_text))
    # The token names a local wall-clock hour; local = UTC + offset, so UTC = local - offset.
    try:
        start = day + timedelta(hours=_hour(hour_text)) - offset
    except OverflowError:
        raise _Invalid("the hour falls outside the representable range") from None
    return Period(start, start + _ONE_HOUR, raw)


def _shape_error(shape: str) -> _Invalid:
    return _Invalid(f"expected the shape {shape}")


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_api(token: str, frequency: str) -> Period:
    shape = _API_SHAPES[frequency]
    n = len(token)
    t = token
    if frequency == "annual":
        if n == 4:
            return _annual(t, t)
    elif frequency == "quarterly":
        if n == 7 and t[4:6] == "-Q":
            return _quarterly(t, t[:4], t[6])
    elif frequency == "monthly":
        if n == 7 and t[4] == "-":
            return _monthly(t, t[:4], t[5:])
    elif frequency in ("weekly", "daily"):
        if n == 10 and t[4] == "-" and t[7] == "-":
            return _days(t, t[:4], t[5:7], t[8:], _ONE_WEEK if frequency == "weekly" else _ONE_DAY)
    elif frequency == "hourly":
        if n == 13 and t[4] == "-" and t[7] == "-" and t[10] == "T":
            return _hourly(t, t[:4], t[5:7], t[8:10], t[11:], timedelta(0))
    elif n == 16 and t[4] == "-" and t[7] == "-" and t[10] == "T":  # local-hourly
        return _hourly(t, t[:4], t[5:7], t[8:10], t[11:13], _offset(t[13], t[14:]))
    raise _shape_error(shape)


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_bulk(token: str, code: str) -> Period:
    shape = _BULK_SHAPES[code]
    n = len(token)
    t = token
    if code == "A":
        if n == 4:
            return _annual(t, t)
    elif code == "Q":
        if n == 6 and t[4] == "Q":
            return _quarterly(t, t[:4], t[5])
    elif code == "M":
        if n == 6:
            return _monthly(t, t[:4], t[4:])
    elif code in ("W", "D"):
        if n == 8:
            return _days(t, t[:4], t[4:6], t[6:], _ONE_WEEK if code == "W" else _ONE_DAY)
    elif code == "H":
        if n == 12 and t[8] == "T" and t[11] == "Z":
            return _hourly(t, t[:4], t[4:6], t[6:8], t[9:11], timedelta(0))
    elif n == 14 and t[8] == "T":  # HL: local hour with its UTC offset
        return _hourly(t, t[:4], t[4:6], t[6:8], t[9:11], _offset(t[11], t[12:]))
    raise _shape_error(shape)


def _token_text(token: object, frequency: str) -> str:
    if isinstance(token, str):
        return token
    if isinstance(token, int) and not isinstance(token, bool):
        return str(token)  # /v2/seriesid sends annual periods as JSON integers
    raise PeriodError(f"period {token!r} ({frequency}): expected a string, got {type(token).__name__}")


def parse_period(token: str | int, frequency: str) -> Period:
    """Parses an API v2 period token for an EIA frequency name ("monthly", "local-hourly", ...)."""
    text = _token_text(token, frequency)
    if frequency not in _API_SHAPES:
        raise PeriodError(f"period {text!r}: unknown frequency {frequency!r}; expected one of {FREQUENCIES}")
    try:
        return _parse_api(text, frequency)
    except _Invalid as exc:
        raise PeriodError(f"period {text!r} is not a valid {frequency} period: {exc}") from None


def parse_bulk_period(token: str | int, frequency_code: str) -> Period:
    """Parses a bulk-file period token for a bulk frequency code ("A", "Q", "M", "W", "D", "H", "HL")."""
    # Hot path (called once per bulk data point): a string token with a known code hits the cache.
    text = token if type(token) is str else _token_text(token, frequency_code)
    try:
        return _parse_bulk(text, frequency_code)
    except _Invalid as exc:
        name = BULK_FREQUENCY_CODES[frequency_code]
        raise PeriodError(f"period {text!r} is not a valid bulk {name} ({frequency_code}) period: {exc}") from None
    except KeyError:
        raise PeriodError(
            f"period {text!r}: unknown bulk frequency code {frequency_code!r}; "
            f"expected one of {tuple(BULK_FREQUENCY_CODES)}"
        ) from None


def period_frequency_aligned(start: datetime, frequency: str) -> bool:
    """True when `start` can begin a period of `frequency` (an EIA frequency name).

    Naive datetimes and unknown frequencies are never aligned. Weekly periods only need to start
    at midnight: EIA's weeks end on different weekdays depending on the survey.
    """
    if start.tzinfo is None or start.utcoffset() is None or frequency not in _API_SHAPES:
        return False
    s = start.astimezone(UTC)
    if s.minute or s.second or s.microsecond:
        return False
    if frequency in ("hourly", "local-hourly"):
        return True
    if s.hour:
        return False
    if frequency in ("daily", "weekly"):
        return True
    if s.day != 1:
        return False
    if frequency == "monthly":
        return True
    if frequency == "quarterly":
        return s.month in (1, 4, 7, 10)
    return s.month == 1  # annual
