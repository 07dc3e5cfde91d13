"""Real-shaped batches for the gate tests: clean observations, staging and merging helpers.

The observations copy the shapes of the real samples in ../shared/eia-samples (retail-sales prices
in "cents per kilowatt-hour", EIA-930 hourly megawatthours, Henry Hub daily prices, STEO monthly
forecasts, international annual BKWH, withheld "w" values), with periods relative to today so the
freshness rule sees a current batch. Periods and units go through the real normalizer functions
(`parse_period`, `lookup_unit`), so start, end and canonical values are exactly what ingestion makes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg

from tasks.normalize.observation import SOURCE_API, SOURCE_BULK, Observation
from tasks.normalize.periods import parse_period
from tasks.normalize.units import lookup_unit
from tasks.store.merge import ensure_partitions, merge_batch
from tasks.store.staging import BatchContext, stage_observations

RETAIL_PRICE = "EIA2:electricity/retail-sales:price:M:sectorid=ALL;stateid=US"
US48_DEMAND = "EBA.US48-ALL.D.H"
MISO_LOCAL = "EBA.MISO-ALL.NG.HL"
HENRY_HUB = "NG.RNGWHHD.D"
STEO_WORLD = "STEO.PATC_WORLD.M"
HKG_GENERATION = "INTL.29-12-HKG-BKWH.A"
GASOLINE_WEEKLY = "PET.EMM_EPM0_PTE_NUS_DPG.W"


def observation(
    series_id: str,
    frequency: str,
    raw_period: str,
    raw_value: str | None,
    unit: str | None,
    *,
    source: str = SOURCE_API,
    dataset: str | None = None,
) -> Observation:
    """An observation as the normalizers build it from EIA's period token, value text and unit."""
    period = parse_period(raw_period, frequency)
    try:
        value: float | None = float(raw_value) if raw_value is not None else None
        flag = None
    except ValueError:
        value, flag = None, raw_value
    if raw_value is None:
        flag = "null"
    mapping = lookup_unit(unit)
    return Observation(
        series_id=series_id,
        period=period.start,
        period_end=period.end,
        raw_period=period.raw,
        frequency=frequency,
        value=value,
        raw_value=raw_value,
        value_flag=flag,
        unit=unit,
        canonical_unit=mapping.canonical_unit if mapping else None,
        canonical_currency=mapping.canonical_currency if mapping else None,
        conversion_factor=mapping.conversion_factor if mapping else None,
        canonical_value=value * mapping.conversion_factor if mapping and value is not None else None,
        area="US",
        sector=None,
        seasonal_adjustment=None,
        description=None,
        source=source,
        dataset=dataset,
        metadata={"sample": "tests/quality"},
    )


def _month_token(now: datetime, months_back: int) -> str:
    index = now.year * 12 + now.month - 1 - months_back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def clean_batch(now: datetime | None = None) -> list[Observation]:
    """A batch that passes every rule: 7 series, every frequency, a withheld value and a forecast."""
    now = now or datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    obs: list[Observation] = []
    retail = "electricity/retail-sales"
    for back, price in ((5, "6.75"), (4, "6.87"), (3, "6.91")):
        obs.append(
            observation(
                RETAIL_PRICE,
                "monthly",
                _month_token(now, back),
                price,
                "cents per kilowatt-hour",
                dataset=retail,
            )
        )
    obs.append(
        observation(RETAIL_PRICE, "monthly", _month_token(now, 2), "w", "cents per kilowatt-hour", dataset=retail)
    )
    for back, mwh in ((6, "450120"), (5, "447310"), (4, "441980"), (3, "439870")):
        token = (hour - timedelta(hours=back)).strftime("%Y-%m-%dT%H")
        obs.append(
            observation(US48_DEMAND, "hourly", token, mwh, "megawatthours", dataset="electricity/rto/region-data")
        )
    for back, mwh in ((7, "61230"), (6, "60110"), (5, "59870")):
        local = hour - timedelta(hours=back) - timedelta(hours=6)  # the wall clock at UTC-06
        token = local.strftime("%Y-%m-%dT%H") + "-06"
        obs.append(
            observation(
                MISO_LOCAL,
                "local-hourly",
                token,
                mwh,
                "megawatthours",
                dataset="electricity/rto/fuel-type-data",
            )
        )
    for back, price in ((4, "3.12"), (3, "3.18"), (2, "3.05")):
        token = (day - timedelta(days=back)).strftime("%Y-%m-%d")
        obs.append(observation(HENRY_HUB, "daily", token, price, "$/MMBTU", source=SOURCE_BULK, dataset="NG"))
    for back, price in ((3, "3.241"), (2, "3.198"), (1, "3.176")):
        token = (day - timedelta(days=7 * back)).strftime("%Y-%m-%d")
        obs.append(
            observation(
                GASOLINE_WEEKLY,
                "weekly",
                token,
                price,
                "dollars per gallon",
                source=SOURCE_BULK,
                dataset="PET",
            )
        )
    for ahead, volume in ((6, "104.61"), (7, "104.88"), (8, "105.02")):  # STEO forecasts, ahead of today
        obs.append(
            observation(
                STEO_WORLD,
                "monthly",
                _month_token(now, -ahead),
                volume,
                "million barrels per day",
                dataset="steo",
            )
        )
    obs.append(observation(HKG_GENERATION, "annual", str(now.year - 2), "38.9", "BKWH", dataset="international"))
    obs.append(observation(HKG_GENERATION, "annual", str(now.year - 1), "NA", "BKWH", dataset="international"))
    return obs


def rows_of(batch: Sequence[Observation], series_id: str) -> list[int]:
    """Indexes of the batch's rows of one series."""
    return [i for i, o in enumerate(batch) if o.series_id == series_id]


def replace(batch: Sequence[Observation], index: int, **changes: object) -> list[Observation]:
    """The batch with one row changed."""
    out = list(batch)
    out[index] = dataclasses.replace(out[index], **changes)  # type: ignore[arg-type]
    return out


def stage(dsn: str, ctx: BatchContext, batch: Sequence[Observation]) -> int:
    with psycopg.connect(dsn) as conn:
        staged = stage_observations(conn, ctx, batch)
        conn.commit()
    return staged


def store(dsn: str, batch: Sequence[Observation], tenant_id: str = "t-quality") -> None:
    """Loads observations into eia_series_timeseries through staging and the real merge."""
    ctx = BatchContext.new(tenant_id, "run-history", "history")
    with psycopg.connect(dsn) as conn:
        stage_observations(conn, ctx, batch)
        ensure_partitions(conn, ctx.batch_id)
        merge_batch(conn, ctx, outbox_topic=None)
        conn.execute("DELETE FROM eia_series_staging WHERE ingest_batch_id = %s", (ctx.batch_id,))
        conn.commit()
