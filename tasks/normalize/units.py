"""The unit table (`units.csv`, the one source of truth for units) and its lookup.

EIA unit strings drift ("cents per kilowatthour" became "cents per kilowatt-hour") and differ
between the API ("$/MMBTU", "MBBL") and bulk files ("Million Barrels", "MMbbl"). Every string the
pipeline understands is an explicit row mapping it to a canonical unit, a conversion factor and a
plausible range. Matching ignores only case and runs of whitespace; a string not in the table is
unknown (its observations keep the raw unit with no canonical value) and is never guessed.

Ranges: prices are >= 0 except per-barrel and per-MWh prices (WTI closed at -$36.98/bbl on
2020-04-20, and wholesale electricity prices go negative). Energy, volume, mass, power and rates
are unbounded because EIA publishes net figures (storage withdrawals, net imports, pumped-storage
net generation, reserve adjustments). Counts are >= 0. Maxima on prices only catch a 100x unit slip.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Final

QUANTITIES: Final = frozenset({"price", "energy", "volume", "mass", "power", "ratio", "count", "other"})
CURRENCIES: Final = frozenset({"USD"})
COLUMNS: Final = (
    "unit",
    "canonical_unit",
    "canonical_currency",
    "conversion_factor",
    "quantity",
    "min_value",
    "max_value",
)


class UnitTableError(ValueError):
    """units.csv is malformed; the message names the line and the field."""


@dataclass(frozen=True, slots=True)
class UnitMapping:
    """One row of the unit table: how an EIA unit string maps to its canonical unit."""

    unit: str  # EIA's unit string, as written in the table
    canonical_unit: str
    canonical_currency: str | None  # "USD" for money units
    conversion_factor: float  # canonical value = value * conversion_factor
    quantity: str  # one of QUANTITIES
    min_value: float | None  # plausible range of the canonical value; None = unbounded
    max_value: float | None


def unit_key(unit: str) -> str:
    """The table key of a unit string: case-folded, whitespace runs collapsed, ends trimmed."""
    return " ".join(unit.split()).casefold()


def _bound(text: str, line: int, column: str) -> float | None:
    if not text.strip():
        return None
    return _number(text, line, column)


def _number(text: str, line: int, column: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise UnitTableError(f"units.csv line {line}: {column} {text!r} is not a number") from None
    if not math.isfinite(number):
        raise UnitTableError(f"units.csv line {line}: {column} {text!r} is not finite")
    return number


def parse_unit_table(text: str) -> dict[str, UnitMapping]:
    """Parses and validates the unit table CSV; keys are `unit_key(unit)`."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise UnitTableError(f"units.csv header must be {','.join(COLUMNS)}; got {reader.fieldnames}")
    table: dict[str, UnitMapping] = {}
    for row in reader:
        line = reader.line_num
        if None in row or any(v is None for v in row.values()):
            raise UnitTableError(f"units.csv line {line}: expected {len(COLUMNS)} fields")
        unit, canonical = row["unit"], row["canonical_unit"].strip()
        key = unit_key(unit)
        if not key or not canonical:
            raise UnitTableError(f"units.csv line {line}: unit and canonical_unit must not be empty")
        if key in table:
            raise UnitTableError(
                f"units.csv line {line}: unit {unit!r} repeats {table[key].unit!r} (case and spacing are ignored)"
            )
        currency = row["canonical_currency"].strip() or None
        if currency is not None and currency not in CURRENCIES:
            raise UnitTableError(f"units.csv line {line}: canonical_currency {currency!r} is not one of {CURRENCIES}")
        quantity = row["quantity"].strip()
        if quantity not in QUANTITIES:
            raise UnitTableError(f"units.csv line {line}: quantity {quantity!r} is not one of {sorted(QUANTITIES)}")
        factor = _number(row["conversion_factor"], line, "conversion_factor")
        if factor <= 0:
            raise UnitTableError(f"units.csv line {line}: conversion_factor must be positive")
        low, high = _bound(row["min_value"], line, "min_value"), _bound(row["max_value"], line, "max_value")
        if low is not None and high is not None and low > high:
            raise UnitTableError(f"units.csv line {line}: min_value is greater than max_value")
        table[key] = UnitMapping(unit.strip(), canonical, currency, factor, quantity, low, high)
    return table


@cache
def unit_table() -> Mapping[str, UnitMapping]:
    """The packaged unit table, read once; keys are `unit_key(unit)`."""
    text = resources.files("tasks.normalize").joinpath("units.csv").read_text(encoding="utf-8")
    return MappingProxyType(parse_unit_table(text))


@lru_cache(maxsize=4096)
def _lookup(unit: str) -> UnitMapping | None:
    return unit_table().get(unit_key(unit))


def lookup_unit(unit: str | None) -> UnitMapping | None:
    """The mapping for an EIA unit string; None when the unit is missing, empty or not in the table."""
    if not unit or not isinstance(unit, str):
        return None
    return _lookup(unit)
