"""EIA values → a finite float or a kept token, never a silent loss.

`/data` routes send values as strings ("6.75"), `/v2/seriesid` and bulk files as JSON numbers, and
all of them use tokens instead of numbers on purpose ("w" = withheld, "NA" = not available, null).
A token is information: the row is kept with no number, the token in `raw_value` and `flag`. Only
plain decimal text counts as a number; Python's `float()` would also accept "nan", "inf", "1_000"
and non-ASCII digits, none of which EIA means as a number. Non-finite results are never returned.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Final

# Longest text treated as a number: anything longer is a token, not a measurement.
MAX_NUMBER_TEXT: Final = 64

# Tokens EIA sends on purpose in place of a number; each explains why the value is missing.
KNOWN_TOKENS: Final[frozenset[str]] = frozenset(
    {
        "w",  # withheld to avoid disclosure of individual company data (coal, electricity)
        "W",  # the same, upper case (petroleum and natural gas tables)
        "NA",  # not available (seriesid/international: with dataFlagId, e.g. 2 "temporarily unavailable")
        "--",  # not applicable
        "(s)",  # rounds to zero: less than 0.5 of the unit shown
        "*",  # rounds to zero / too small to show (SEDS, Monthly Energy Review)
        "null",  # flag given to a JSON null value (no data for the period)
        "NM",  # not meaningful (e.g. a percentage change from a tiny or zero base)
        "(D)",  # withheld to avoid disclosure (Census-style notation in some EIA tables)
        "-",  # no data reported / not applicable (dash in older tables and bulk files)
    }
)

# Flag for an empty or all-blank string, and for a JSON value that is not a scalar.
EMPTY_FLAG: Final = "empty"
INVALID_FLAG: Final = "invalid"
# Flag for an integer too large for a float (JSON allows arbitrarily long integers).
OVERFLOW_FLAG: Final = "overflow"

_NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


@dataclass(frozen=True, slots=True)
class ParsedValue:
    """A value as a finite float (or None), its text as EIA sent it, and the token when not a number."""

    value: float | None
    raw_value: str | None  # None only for JSON null
    flag: str | None  # None for numbers


# (value, raw_value, flag): the allocation-light form the bulk hot path uses.
ValueParts = tuple[float | None, str | None, str | None]
_NULL_PARTS: Final[ValueParts] = (None, None, "null")


def _non_finite_text(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def _from_text(raw: str) -> ValueParts:
    if len(raw) <= MAX_NUMBER_TEXT:
        text = raw.strip()
        if not text:
            return None, raw, EMPTY_FLAG
        if _NUMBER.fullmatch(text):
            number = float(text)
            if math.isfinite(number):
                return number, raw, None
    return None, raw, raw  # a token, or text overflowing to infinity ("1e999")


def parse_value_parts(raw: object) -> ValueParts:
    """`parse_value` as a plain (value, raw_value, flag) tuple, for loops over millions of points."""
    if type(raw) is float:  # bulk and seriesid values: the common case first
        if math.isfinite(raw):
            return raw, repr(raw), None
        text = _non_finite_text(raw)
        return None, text, text
    if type(raw) is str:
        return _from_text(raw)
    if raw is None:
        return _NULL_PARTS
    if isinstance(raw, bool):
        text = "true" if raw else "false"
        return None, text, text
    if isinstance(raw, int):
        try:
            text = str(raw)
        except ValueError:  # more digits than Python converts to text; no JSON parser yields this
            return None, OVERFLOW_FLAG, OVERFLOW_FLAG
        try:
            return float(raw), text, None
        except OverflowError:
            return None, text, OVERFLOW_FLAG
    if isinstance(raw, float):  # float subclasses
        return parse_value_parts(float(raw))
    if isinstance(raw, str):  # str subclasses
        return _from_text(str(raw))
    return None, json.dumps(raw, default=str, sort_keys=True), INVALID_FLAG


def parse_value(raw: object) -> ParsedValue:
    """Parses one value as EIA sent it (string, JSON number, or null)."""
    return ParsedValue(*parse_value_parts(raw))
