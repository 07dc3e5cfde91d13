"""Quarantine replay against the real database: rows load after a fix, or stay exactly where they were."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tasks.core.catalog import CatalogEntry
from tasks.load.batch import BatchOutcome, LoadTargets, load_batch
from tasks.load.replay import (
    METADATA_KEY,
    REPLAY_JOB,
    ReplayConflict,
    ReplayError,
    _remover,
    replay_quarantine,
)
from tasks.normalize.api_rows import normalize_route_rows
from tasks.normalize.identity import route_series_id
from tasks.normalize.observation import SOURCE_API, NormalizeResult, Rejection
from tasks.standin.data import synthetic_route_series
from tasks.store.quarantine import quarantine_rejections
from tasks.store.staging import BatchContext
from tests.quality.conftest import AddUnits
from tests.support.services import scalar

TENANT = "t-replay"
ROUTE = "electricity/retail-sales"
ODD_UNIT = "furlongs per fortnight"
# The "fix": the odd unit as a price in cents per kilowatt-hour (an existing canonical unit and range).
ODD_UNIT_ROW = f"{ODD_UNIT},USD/kWh,USD,0.01,price,0,10"
TARGETS = LoadTargets(outbox_topic=None, dlq_topic=None, source=SOURCE_API, dataset=ROUTE)


def entry(sector: str = "RES") -> CatalogEntry:
    return CatalogEntry(
        id=f"retail-{sector}",
        route=ROUTE,
        frequency="monthly",
        data=("price",),
        facets={"stateid": ("US",), "sectorid": (sector,)},
        series_facets=("sectorid", "stateid"),
        area_facet="stateid",
        sector_facet="sectorid",
    )


def series_id(sector: str = "RES") -> str:
    return route_series_id(ROUTE, "price", "monthly", {"sectorid": sector, "stateid": "US"})


def rows(
    unit: str, *, sector: str = "RES", n: int = 12, start: str = "2025-01", base: float = 12.5
) -> list[dict[str, Any]]:
    return synthetic_route_series(
        ROUTE,
        "monthly",
        n_points=n,
        facets={"stateid": "US", "sectorid": sector},
        column="price",
        unit=unit,
        start=start,
        value_fn=lambda i: f"{base + i / 10:.2f}",
    )


def load(dsn: str, *batches: list[dict[str, Any]]) -> BatchOutcome:
    """Normalizes and loads lists of rows as one batch of the series flow."""
    result = NormalizeResult()
    for batch_rows in batches:
        result.extend(normalize_route_rows(batch_rows, entry(batch_rows[0]["sectorid"])))
    return load_batch(dsn, BatchContext.new(TENANT, "run-test", "ingest_eia_series_timescale"), result, TARGETS)


def quarantined(dsn: str) -> list[tuple[Any, ...]]:
    """What the quarantine holds, without ids, batch ids and replay provenance (those may change)."""
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            """SELECT series_id, raw_period, raw_value, reason, source, dataset,
                    payload - 'ingest_run_id' - 'ingest_batch_id' - 'ingest_job_id' #- '{metadata,quarantine_replay}'
               FROM eia_series_quarantine ORDER BY series_id, raw_period, reason"""
        ).fetchall()
    return [(*r[:6], json.dumps(r[6], sort_keys=True)) for r in found]


def test_unknown_unit_is_blocked_then_loaded_by_a_replay_after_the_unit_is_added(db: str, add_units: AddUnits) -> None:
    blocked = load(db, rows(ODD_UNIT))
    assert blocked.failed_checks == ["unknown_unit"]
    assert scalar(db, "SELECT count(*) FROM eia_series_quarantine WHERE reason = 'unknown_unit'") == 12

    add_units(ODD_UNIT_ROW)
    result = replay_quarantine(db, tenant_id=TENANT, reason="unknown_unit", actor="ops-alice")

    assert (result.selected, result.replayed, result.loaded, result.still_quarantined) == (12, 12, 12, 0)
    assert (result.inserted, result.updated, result.requarantined) == (12, 0, 0)
    assert scalar(db, "SELECT count(*) FROM eia_series_quarantine") == 0
    with psycopg.connect(db) as conn:
        stored = conn.execute(
            """SELECT raw_period, value, canonical_unit, canonical_currency, conversion_factor, canonical_value,
                    area, sector, ingest_job_id, metadata FROM eia_series_timeseries ORDER BY period"""
        ).fetchall()
        batch_log = conn.execute(
            "SELECT received, inserted, quarantined, gate_passed FROM eia_batch_log WHERE run_id LIKE 'replay-%'"
        ).fetchall()
        audit = conn.execute("SELECT actor, action, details FROM eia_audit_log").fetchall()
    assert [s[0] for s in stored] == [f"2025-{m:02d}" for m in range(1, 13)]
    first = stored[0]
    # Canonical fields come from the unit table as it is now; the rest as EIA sent it.
    assert first[1:8] == (12.5, "USD/kWh", "USD", 0.01, 12.5 * 0.01, "US", "RES")
    assert first[8] == REPLAY_JOB
    assert first[9][METADATA_KEY]["reason"] == "unknown_unit" and first[9]["route"] == ROUTE
    assert batch_log == [(12, 12, 0, True)]
    assert len(audit) == 1 and audit[0][:2] == ("ops-alice", "quarantine.replay")
    assert audit[0][2]["loaded"] == 12 and audit[0][2]["filters"]["reason"] == "unknown_unit"


def test_a_replay_whose_gate_still_fails_changes_nothing(db: str, add_units: AddUnits) -> None:
    load(db, rows(ODD_UNIT))
    before = quarantined(db)

    result = replay_quarantine(db, tenant_id=TENANT, reason="unknown_unit")

    assert (result.selected, result.replayed, result.loaded, result.requarantined) == (12, 12, 0, 12)
    assert result.still_quarantined == 12
    assert [b.failed_checks for b in result.batches] == [["unknown_unit"]]
    # Nothing merged, published or lost; the same rows, once each, for the same reason.
    assert scalar(db, "SELECT count(*) FROM eia_series_timeseries") == 0
    assert scalar(db, "SELECT count(*) FROM eia_outbox") == 0
    assert quarantined(db) == before
    assert scalar(db, "SELECT count(*) FROM eia_series_quarantine") == 12

    # The re-filed rows replay like the originals once the unit is known.
    add_units(ODD_UNIT_ROW)
    again = replay_quarantine(db, tenant_id=TENANT, reason="unknown_unit")
    assert (again.loaded, again.inserted, again.still_quarantined) == (12, 12, 0)


def test_each_reason_replays_on_its_own(db: str) -> None:
    """Good rows blocked by a bad sibling (batch_blocked) load without touching the sibling's rows."""
    outcome = load(db, rows(ODD_UNIT), rows("cents per kilowatt-hour", n=6, sector="COM"))
    assert outcome.failed_checks == ["unknown_unit"]

    result = replay_quarantine(db, tenant_id=TENANT, reason="batch_blocked")

    assert (result.selected, result.loaded, result.inserted) == (6, 6, 6)
    counts = dict(
        psycopg.connect(db).execute("SELECT reason, count(*) FROM eia_series_quarantine GROUP BY reason").fetchall()
    )
    assert counts == {"unknown_unit": 12}
    assert scalar(db, "SELECT count(DISTINCT series_id) FROM eia_series_timeseries") == 1


def test_normalizer_rejections_go_through_their_normalizer_again(db: str) -> None:
    good, bad, repeat = rows("cents per kilowatt-hour", n=3)
    bad = {**bad, "period": "2025-13"}
    rejections = [
        # Rejected by an older parser, readable now: loads.
        Rejection("bad_period", "old parser", series_id(), good["period"], good["price"], good),
        # Still unreadable: stays.
        Rejection("bad_period", "month 13", series_id(), bad["period"], bad["price"], bad),
        # A repeat of a loaded period: never replayed.
        Rejection("duplicate_in_response", "repeat", series_id(), repeat["period"], repeat["price"], repeat),
    ]
    with psycopg.connect(db) as conn:
        ctx = BatchContext.new(TENANT, "run-test", "ingest_eia_series_timescale")
        quarantine_rejections(conn, ctx, rejections, source=SOURCE_API, dataset=ROUTE, dlq_topic=None)
        conn.commit()

    result = replay_quarantine(db, tenant_id=TENANT)

    assert (result.selected, result.loaded, result.rejected) == (3, 1, 1)
    assert result.not_replayable == {"duplicate_in_response: a repeat of a period whose first occurrence was loaded": 1}
    with psycopg.connect(db) as conn:
        stored = conn.execute("SELECT series_id, raw_period, value, area, sector FROM eia_series_timeseries").fetchall()
        left = conn.execute("SELECT reason, raw_period FROM eia_series_quarantine ORDER BY reason").fetchall()
    # The catalog entry rebuilt from the series id (area and sector facets from the packaged catalog).
    assert stored == [(series_id(), good["period"], float(good["price"]), "US", "RES")]
    assert left == [("bad_period", "2025-13"), ("duplicate_in_response", repeat["period"])]


def test_repeated_fetches_of_a_period_load_in_order_as_revisions(db: str, add_units: AddUnits) -> None:
    load(db, rows(ODD_UNIT, n=3, base=10.0))
    load(db, rows(ODD_UNIT, n=3, base=20.0))  # EIA revised the values meanwhile
    add_units(ODD_UNIT_ROW)

    result = replay_quarantine(db, tenant_id=TENANT, reason="unknown_unit")

    assert (result.selected, result.loaded, len(result.batches)) == (6, 6, 2)
    assert (result.inserted, result.updated) == (3, 3)
    with psycopg.connect(db) as conn:
        values = conn.execute("SELECT value, revision FROM eia_series_timeseries ORDER BY period").fetchall()
        history = conn.execute("SELECT old_value, new_value FROM eia_series_revisions ORDER BY period").fetchall()
    assert values == [(20.0, 1), (20.1, 1), (20.2, 1)]
    assert history == [(10.0, 20.0), (10.1, 20.1), (10.2, 20.2)]


def test_a_row_superseded_by_a_newer_fetch_is_left_alone(db: str) -> None:
    load(db, rows(ODD_UNIT), rows("cents per kilowatt-hour", n=2, base=7.0, sector="COM"))
    fresh = load(db, rows("cents per kilowatt-hour", n=1, base=9.0, sector="COM"))  # a newer run stores 2025-01
    assert fresh.passed

    result = replay_quarantine(db, tenant_id=TENANT, reason="batch_blocked")

    assert (result.selected, result.superseded, result.loaded) == (2, 1, 1)
    assert scalar(db, "SELECT value FROM eia_series_timeseries WHERE raw_period = '2025-01'") == 9.0
    assert scalar(db, "SELECT raw_period FROM eia_series_quarantine WHERE reason = 'batch_blocked'") == "2025-01"


def test_two_replays_never_run_at_once(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtext('eia_quarantine_replay'))")
        with pytest.raises(ReplayError, match="another quarantine replay is running"):
            replay_quarantine(db, tenant_id=TENANT)


def test_rows_that_left_quarantine_meanwhile_roll_the_batch_back(db: str) -> None:
    load(db, rows(ODD_UNIT, n=2))
    with psycopg.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM eia_series_quarantine ORDER BY id").fetchall()]
        with pytest.raises(ReplayConflict, match="1 of the 3 quarantine rows"):
            _remover(TENANT, [*ids, 999_999])(conn)


def test_a_replay_takes_the_oldest_rows_up_to_its_limit_ending_with_an_original_batch(
    db: str, add_units: AddUnits
) -> None:
    for start in ("2024-01", "2024-05", "2024-09"):
        load(db, rows(ODD_UNIT, n=4, start=start))
    add_units(ODD_UNIT_ROW)

    first = replay_quarantine(db, tenant_id=TENANT, max_rows=5)
    assert (first.selected, first.loaded, first.remaining) == (8, 8, 4)  # two whole original batches
    assert scalar(db, "SELECT min(raw_period) FROM eia_series_quarantine") == "2024-09"

    second = replay_quarantine(db, tenant_id=TENANT, max_rows=5)
    assert (second.selected, second.loaded, second.remaining) == (4, 4, 0)
    assert scalar(db, "SELECT count(*) FROM eia_series_timeseries") == 12
