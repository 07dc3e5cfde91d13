"""Real EIA bulk lines load end to end with the right periods, values, units, metadata and categories."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from blocks import DATABASE_BLOCK, EiaDatabase
from tasks.load.batch import retention_horizon
from tests.bulk.conftest import Bulk
from tests.bulk.synthetic import archive_bytes

pytestmark = pytest.mark.slow

# Dataset code → real sample files, in archive order (series lines, then category lines).
# dc_bulk_ELEC_lines_edited.txt is left out: its upstream author hand-edited it (see the samples README).
SAMPLES = {
    "ELEC": ["pudl_bulk_ELEC_lines.txt"],
    "NG": ["dc_bulk_NG_more_lines.txt", "dc_bulk_NG_series_and_category_lines.txt"],
    "PET": ["dc_bulk_PET_lines.txt"],
    "COAL": ["dc_bulk_COAL_lines_selected.txt"],
    "NUC_STATUS": ["dc_bulk_NUC_STATUS_lines.txt"],
    "INTL": ["dc_bulk_INTL_TOTAL_SEDS_lines.txt"],
}


def _sample_lines(samples_dir: Path, code: str) -> list[bytes]:
    return [line for name in SAMPLES[code] for line in (samples_dir / name).read_bytes().splitlines() if line.strip()]


def _objects(samples_dir: Path) -> dict[str, list[dict[str, Any]]]:
    return {code: [json.loads(line) for line in _sample_lines(samples_dir, code)] for code in SAMPLES}


def _serve_samples(bulk: Bulk, samples_dir: Path) -> None:
    bulk.serve({code: archive_bytes(code, _sample_lines(samples_dir, code)) for code in SAMPLES})


async def test_real_bulk_lines_load_every_point_with_its_period_value_unit_metadata_and_categories(
    bulk: Bulk, samples_dir: Path
) -> None:
    _serve_samples(bulk, samples_dir)
    objects = _objects(samples_dir)
    expected = {
        (o["series_id"], point[0]): point[1]
        for lines in objects.values()
        for o in lines
        if "series_id" in o
        for point in o.get("data") or []
    }

    state, result = await bulk.run(*SAMPLES)

    assert state.is_completed(), state.message
    assert {r.dataset: r.status for r in result.datasets} == dict.fromkeys(SAMPLES, "loaded")
    assert result.counts.received == result.counts.inserted == len(expected) == 78
    stored = {(s, p): v for s, p, v in bulk.rows("SELECT series_id, raw_period, value FROM eia_series_timeseries")}
    assert stored == expected
    assert bulk.scalar("SELECT count(*) FROM eia_series_quarantine") == 0

    quarterly = bulk.rows(
        """SELECT period, period_end, frequency, value, raw_value, value_flag, unit, canonical_unit, source, dataset
           FROM eia_series_timeseries WHERE series_id = 'ELEC.COST_BTU.NG-US-2.Q' AND raw_period = '2021Q4'"""
    )
    assert quarterly == [
        (
            datetime(2021, 10, 1, tzinfo=UTC),
            datetime(2022, 1, 1, tzinfo=UTC),
            "quarterly",
            4.995772961839175,
            "4.995772961839175",
            None,
            "dollars per million Btu",
            "USD/MMBtu",
            "eia-bulk",
            "ELEC",
        )
    ]
    periods = dict(
        bulk.rows(
            """SELECT raw_period, period FROM eia_series_timeseries
               WHERE (series_id, raw_period) IN (('NG.N9140US2.M', '202102'), ('NUC_STATUS.CAP.4046.D', '20210511'),
                                                 ('TOTAL.LUACPUS.A', '2020'))"""
        )
    )
    assert periods == {
        "202102": datetime(2021, 2, 1, tzinfo=UTC),
        "20210511": datetime(2021, 5, 11, tzinfo=UTC),
        "2020": datetime(2020, 1, 1, tzinfo=UTC),
    }
    nulls = {k for k, v in expected.items() if v is None}
    assert nulls, "the samples hold null values"
    flagged = bulk.rows("SELECT series_id, raw_period, value_flag FROM eia_series_timeseries WHERE value IS NULL")
    assert {(s, p) for s, p, _ in flagged} == nulls and {f for _, _, f in flagged} == {"null"}

    # Series metadata and the category tree come from the same lines.
    series_lines = [o for lines in objects.values() for o in lines if "series_id" in o]
    assert bulk.scalar("SELECT count(*) FROM eia_series_metadata") == len(series_lines) == 26
    receipts = bulk.rows(
        """SELECT name, units, frequency, geography, iso3166, last_updated, source, copyright, dataset,
                  extra->>'geoset_id', extra->>'start'
           FROM eia_series_metadata WHERE series_id = 'ELEC.RECEIPTS.SUB-KY-94.Q'"""
    )
    assert receipts == [
        (
            "Receipts of fossil fuels by electricity plants : subbituminous coal : Kentucky : "
            "independent power producers (total) : quarterly",
            "thousand tons",
            "quarterly",
            "USA-KY",
            "USA-KY",
            "2015-08-25T15:52:58-04:00",
            "EIA, U.S. Energy Information Administration",
            "None",
            "ELEC",
            "ELEC.RECEIPTS.SUB-94.Q",
            "2015Q1",
        )
    ]
    assert bulk.rows(
        "SELECT latitude, longitude, units FROM eia_series_metadata WHERE series_id = 'NUC_STATUS.CAP.4046.D'"
    ) == [(44.2806, -87.5369, "Megawatts")]
    categories = [(code, o) for code, lines in objects.items() for o in lines if "category_id" in o]
    assert bulk.scalar("SELECT count(*) FROM eia_categories") == len(categories) == 8
    assert bulk.rows(
        """SELECT dataset, parent_category_id, name, childseries FROM eia_categories WHERE category_id = 457054"""
    ) == [("NG", 457053, "U.S.", ["NG.N9140US2.M", "NG.N9140US2.A"])]
    roots = bulk.rows("SELECT category_id FROM eia_categories WHERE dataset = 'NG' AND parent_category_id IS NULL")
    assert roots == []  # every NG sample category names its parent


async def test_rows_older_than_the_retention_horizon_are_counted_as_skipped_not_loaded(
    bulk: Bulk, samples_dir: Path
) -> None:
    _serve_samples(bulk, samples_dir)
    await EiaDatabase(dsn=SecretStr(bulk.dsn), retention_years=5).save(DATABASE_BLOCK, overwrite=True)

    state, result = await bulk.run("ELEC", "NUC_STATUS")

    assert state.is_completed(), state.message
    horizon = retention_horizon(5)
    assert horizon is not None
    stored = bulk.scalar("SELECT count(*) FROM eia_series_timeseries")
    assert bulk.scalar("SELECT count(*) FROM eia_series_timeseries WHERE period_end <= %s", horizon) == 0
    assert result.counts.skipped > 0 and stored > 0
    assert result.counts.received == stored + result.counts.skipped
    assert result.counts.received == result.counts.inserted + result.counts.skipped
