"""Staging: rows of a batch whose process was killed are removed by a later run, live batches are not."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import psycopg

from tasks.normalize.observation import SOURCE_API, Observation
from tasks.store.staging import BatchContext, drop_abandoned_staging, stage_observations


def _obs(month: int) -> Observation:
    return Observation(
        series_id="ELEC.PRICE.CA-RES.M",
        period=datetime(2024, month, 1, tzinfo=UTC),
        period_end=datetime(2024, month + 1, 1, tzinfo=UTC),
        raw_period=f"2024-{month:02d}",
        frequency="monthly",
        value=20.5,
        raw_value="20.5",
        value_flag=None,
        unit="cents per kilowatt-hour",
        canonical_unit="USD/MWh",
        canonical_currency="USD",
        conversion_factor=10.0,
        canonical_value=205.0,
        area="CA",
        sector="RES",
        seasonal_adjustment=None,
        description="Average retail price of electricity",
        source=SOURCE_API,
        dataset="electricity/retail-sales",
        metadata=None,
    )


def _staged_batches(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT ingest_batch_id, count(*) FROM eia_series_staging GROUP BY 1").fetchall()
    return {str(batch): int(n) for batch, n in rows}


def test_a_killed_runs_staged_rows_are_dropped_and_a_live_batch_is_kept(db: str) -> None:
    live = BatchContext.new("aurum-prod", "run-2", "ingest_eia_series_timescale")
    seven_hours_us = int(timedelta(hours=7).total_seconds() * 1_000_000)
    killed = dataclasses.replace(
        BatchContext.new("aurum-prod", "run-1", "ingest_eia_series_timescale"),
        ingest_ts=live.ingest_ts - seven_hours_us,
    )
    with psycopg.connect(db) as conn:
        stage_observations(conn, killed, [_obs(m) for m in (1, 2, 3)])
        stage_observations(conn, live, [_obs(m) for m in (1, 2)])

    with psycopg.connect(db, autocommit=True) as conn:
        removed = drop_abandoned_staging(conn)

    assert removed == 3
    assert _staged_batches(db) == {live.batch_id: 2}
