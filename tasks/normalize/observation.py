"""The observation record: the one typed definition of a row of `eia_series_timeseries`.

Everything else is derived from or checked against this module: the staging COPY column list,
the Avro schema and the Soda schema check derive from it; the SQLModel tables of staging and the
observation table (`tasks/store/models.py`) are checked against it by `tests/store/test_models.py`,
and the migrated SQL against those models.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from tasks.core import frequencies

SOURCE_API: Final = "eia-api-v2"
SOURCE_BULK: Final = "eia-bulk"

# The frequency table's names (and bulk codes), re-exported for the modules that import them from here.
FREQUENCIES: Final = frequencies.FREQUENCIES
BULK_FREQUENCY_CODES: Final = frequencies.BULK_FREQUENCY_CODES

# Longest series id accepted: longer ids cannot be indexed safely and are quarantined.
MAX_SERIES_ID_LENGTH: Final = 256
# Longest free-text field kept (unit, description, ...); longer values are quarantined, not truncated.
MAX_TEXT_LENGTH: Final = 4096


# Not frozen: building millions of frozen dataclasses costs ~2x (object.__setattr__ per field) on
# the bulk path. Treat instances as immutable all the same.
@dataclass(slots=True)
class Observation:
    """One normalized EIA observation, as produced by the normalizers (API and bulk paths)."""

    series_id: str
    period: datetime  # start of the period, UTC, timezone-aware
    period_end: datetime  # exclusive end of the period, UTC
    raw_period: str  # the token exactly as EIA sent it ("2024-03", "20220304T23-06", "2023")
    frequency: str  # one of FREQUENCIES
    value: float | None  # NULL when EIA sent a token instead of a number
    raw_value: str | None  # the value as EIA sent it, as text; None for JSON null
    value_flag: str | None  # None for numbers; else the token ("w", "NA", "--", "null", ...)
    unit: str | None  # the unit string exactly as EIA sent it
    canonical_unit: str | None  # None when the unit is not in the unit table
    canonical_currency: str | None
    conversion_factor: float | None
    canonical_value: float | None  # value * conversion_factor
    area: str | None
    sector: str | None
    seasonal_adjustment: str | None
    description: str | None
    source: str  # SOURCE_API or SOURCE_BULK
    dataset: str | None  # API route ("electricity/retail-sales") or bulk dataset code ("ELEC")
    metadata: dict[str, Any] | None  # facets and other context, stored as JSONB


@dataclass(slots=True, frozen=True)
class Rejection:
    """A row that could not become an Observation; it goes to quarantine (and the DLQ) with a reason."""

    reason: str  # a stable machine-readable code, e.g. "bad_period", "duplicate_in_response"
    detail: str  # a human-readable explanation
    series_id: str | None
    raw_period: str | None
    raw_value: str | None
    payload: dict[str, Any] | None  # the offending input, scrubbed of secrets


@dataclass(slots=True)
class NormalizeResult:
    """What a normalizer returns: every input row is in exactly one of the two lists."""

    observations: list[Observation] = dataclasses.field(default_factory=list)
    rejections: list[Rejection] = dataclasses.field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.observations) + len(self.rejections)

    def extend(self, other: NormalizeResult) -> None:
        self.observations.extend(other.observations)
        self.rejections.extend(other.rejections)


OBSERVATION_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Observation))

# Columns the loader adds to every staged row (per batch / run), in staging and the table.
INGEST_FIELDS: Final = ("tenant_id", "ingest_ts", "ingest_job_id", "ingest_run_id", "ingest_batch_id")

# Columns only the table has, maintained by the merge.
TABLE_ONLY_FIELDS: Final = ("revision", "created_at", "updated_at")

# The staging table's columns in COPY order; the timeseries table has these plus TABLE_ONLY_FIELDS.
STAGED_COLUMNS: Final = ("tenant_id", *OBSERVATION_FIELDS, *INGEST_FIELDS[1:])
TABLE_COLUMNS: Final = (*STAGED_COLUMNS, *TABLE_ONLY_FIELDS)
