"""Normalization, the pure core: EIA's raw rows and bulk lines become typed observations.

What it does: periods become half-open UTC intervals with the raw token kept (`parse_period`,
`parse_bulk_period`), values become numbers or flags (`parse_value`: `null`, `"w"`, `"NA"` keep their
token), units map through the one unit table (`lookup_unit`, `units.csv`), series get a stable identity
(`route_series_id`), and whole API responses and bulk lines turn into `Observation`s and `Rejection`s
with a reason (`normalize_route_rows`, `normalize_seriesid_rows`, `parse_bulk_line`). `Observation` is
the one definition of the observation columns; staging, the Avro schema and the contract derive from it.

What it never does: I/O of any kind, or import Prefect, httpx or a database driver (an import-linter
contract keeps it so). Every function is pure over typed values and testable without a service.
"""

from tasks.normalize.api_rows import normalize_route_rows, normalize_seriesid_rows
from tasks.normalize.bulk_lines import BulkLine, parse_bulk_line
from tasks.normalize.identity import route_series_id
from tasks.normalize.observation import NormalizeResult, Observation, Rejection
from tasks.normalize.periods import Period, PeriodError, parse_bulk_period, parse_period
from tasks.normalize.units import lookup_unit
from tasks.normalize.values import parse_value

__all__ = [
    "BulkLine",
    "NormalizeResult",
    "Observation",
    "Period",
    "PeriodError",
    "Rejection",
    "lookup_unit",
    "normalize_route_rows",
    "normalize_seriesid_rows",
    "parse_bulk_line",
    "parse_bulk_period",
    "parse_period",
    "parse_value",
    "route_series_id",
]
