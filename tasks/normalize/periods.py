"""EIA period tokens → half-open UTC intervals [start, end), strictly validated per frequency.

EIA sends periods as text whose shape depends on the frequency ("2024", "2024-Q1", "2024-01",
"2024-01-05", "2024-03-01T05", "2023-03-20T00-07") and, in bulk files, in a compact form
("2021Q4", "202102", "20220305T05Z", "20220304T23-06"). A `DATE` cannot hold sub-daily data,
so every period becomes a UTC start and exclusive end plus the raw token. The frequency decides
which shape is legal: a token of the wrong shape or an impossible date raises `PeriodError`
(a `ValueError`), never another exception, so callers can quarantine the row.

The shapes and lengths are the frequency table's (`tasks/core/frequencies.py`): each shape is read
once into a `_Layout` (where its fields and separators stand), which both parses and formats tokens.
Parsing is cached: a bulk archive repeats the same few thousand tokens millions of times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

from tasks.core.frequencies import BULK_FREQUENCY_CODES, BY_CODE, BY_NAME, FREQUENCIES, Frequency, Months

# Real UTC offsets lie within -12..+14 hours; EIA-930 uses North American zones only.
_MAX_OFFSET_HOURS: Final = 14
_CACHE_SIZE: Final = 1 << 16
_UTC_MIDNIGHT: Final = datetime(2000, 1, 1, tzinfo=UTC)  # any UTC midnight works

# A shape's fields: the year, the quarter's digit, month, day, hour, and a signed UTC offset in hours.
# Anything else in a shape ("-", "Q", "T", "Z") is a separator that must stand where the shape has it.
_SHAPE_PARTS: Final = re.compile(r"Y+|N|M+|D+|±H+|H+|.")
_FIELDS: Final = frozenset("YNMDH±")


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


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the fields and separators of one token shape stand, read from the shape's text."""

    frequency: Frequency
    shape: str
    separators: tuple[tuple[int, str], ...]
    fields: Mapping[str, slice]  # "Y", "N", "M", "D", "H" and "±" (the sign, then the offset's hours)

    @classmethod
    def of(cls, frequency: Frequency, shape: str) -> _Layout:
        separators: list[tuple[int, str]] = []
        fields: dict[str, slice] = {}
        for part in _SHAPE_PARTS.finditer(shape):
            key = part.group()[0]
            if key not in _FIELDS:
                separators.append((part.start(), part.group()))
            elif key in fields:  # pragma: no cover - guards edits to the frequency table
                raise RuntimeError(f"shape {shape!r} of {frequency.name} repeats the field {key}")
            else:
                fields[key] = slice(part.start(), part.end())
        needed = {"Y"} if frequency.calendar else {"Y", "M", "D"}
        if not needed <= fields.keys():  # pragma: no cover - guards edits to the frequency table
            raise RuntimeError(f"shape {shape!r} of {frequency.name} lacks one of the fields {sorted(needed)}")
        return cls(frequency, shape, tuple(separators), fields)


_API_LAYOUTS: Final[Mapping[str, _Layout]] = {f.name: _Layout.of(f, f.api_shape) for f in BY_NAME.values()}
_BULK_LAYOUTS: Final[Mapping[str, _Layout]] = {f.code: _Layout.of(f, f.bulk_shape) for f in BY_CODE.values()}


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


def _offset(signed: str) -> timedelta:
    sign, text = signed[:1], signed[1:]
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


def _months(raw: str, year: int, month: int, count: int) -> Period:
    end_index = month - 1 + count  # months since January of `year`
    return Period(
        datetime(year, month, 1, tzinfo=UTC),
        datetime(year + end_index // 12, end_index % 12 + 1, 1, tzinfo=UTC),
        raw,
    )


def _calendar(token: str, fields: Mapping[str, slice], months: int) -> Period:
    year = _year(token[fields["Y"]])
    if "N" in fields:
        quarter = _digits(token[fields["N"]])
        if not 1 <= quarter <= 12 // months:
            raise _Invalid(f"quarter {quarter} does not exist")
        return _months(token, year, months * (quarter - 1) + 1, months)
    return _months(token, year, _month(token[fields["M"]]) if "M" in fields else 1, months)


def _fixed(token: str, fields: Mapping[str, slice], stride: timedelta) -> Period:
    offset = _offset(token[fields["±"]]) if "±" in fields else timedelta(0)
    start = _day_start(_year(token[fields["Y"]]), _month(token[fields["M"]]), _digits(token[fields["D"]]))
    if "H" in fields:
        # The token names a wall-clock hour; local = UTC + offset, so UTC = local - offset.
        try:
            start = start + timedelta(hours=_hour(token[fields["H"]])) - offset
        except OverflowError:
            raise _Invalid("the hour falls outside the representable range") from None
    return Period(start, start + stride, token)


def _parse(token: str, layout: _Layout) -> Period:
    if len(token) != len(layout.shape) or any(token[i] != s for i, s in layout.separators):
        raise _Invalid(f"expected the shape {layout.shape}")
    length = layout.frequency.length
    if isinstance(length, Months):
        return _calendar(token, layout.fields, length.count)
    return _fixed(token, layout.fields, length)


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_api(token: str, frequency: str) -> Period:
    return _parse(token, _API_LAYOUTS[frequency])


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_bulk(token: str, code: str) -> Period:
    return _parse(token, _BULK_LAYOUTS[code])


def _token_text(token: object, frequency: str) -> str:
    if isinstance(token, str):
        return token
    if isinstance(token, int) and not isinstance(token, bool):
        return str(token)  # /v2/seriesid sends annual periods as JSON integers
    raise PeriodError(f"period {token!r} ({frequency}): expected a string, got {type(token).__name__}")


def parse_period(token: str | int, frequency: str) -> Period:
    """Parses an API v2 period token for an EIA frequency name ("monthly", "local-hourly", ...)."""
    text = _token_text(token, frequency)
    if frequency not in _API_LAYOUTS:
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


def api_period_token(moment: datetime, frequency: str) -> str:
    """The API token (`start`/`end`) of the period of `frequency` holding `moment`, read as it stands.

    The UTC offset of a local-hourly shape is left out: the request names a bare hour.
    """
    layout = _API_LAYOUTS[frequency]
    length = layout.frequency.length
    months = length.count if isinstance(length, Months) else 1
    values = {
        "Y": moment.year,
        "N": (moment.month - 1) // months + 1,
        "M": moment.month,
        "D": moment.day,
        "H": moment.hour,
    }
    parts = dict(layout.separators)
    for key, where in layout.fields.items():
        if key != "±":
            parts[where.start] = f"{values[key]:0{where.stop - where.start}d}"
    return "".join(parts[i] for i in sorted(parts))


def period_frequency_aligned(start: datetime, frequency: str) -> bool:
    """True when `start` can begin a period of `frequency` (an EIA frequency name).

    Naive datetimes and unknown frequencies are never aligned. Weekly periods only need to start
    at midnight: EIA's weeks end on different weekdays depending on the survey.
    """
    if start.tzinfo is None or start.utcoffset() is None or frequency not in BY_NAME:
        return False
    s = start.astimezone(UTC)
    alignment = BY_NAME[frequency].alignment
    if isinstance(alignment, Months):
        midnight_on_the_first = s.day == 1 and not (s.hour or s.minute or s.second or s.microsecond)
        return midnight_on_the_first and (s.month - 1) % alignment.count == 0
    return (s - _UTC_MIDNIGHT) % alignment == timedelta(0)
