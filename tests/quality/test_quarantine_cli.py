"""`eia quarantine list|replay` and `eia quality report`, through the real CLI and database."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from flows.cli.app import app
from flows.series import ingest_eia_series_timescale, run_result
from tasks.load.batch import LoadTargets, load_batch
from tasks.normalize.observation import SOURCE_API, NormalizeResult, Rejection
from tasks.store.quarantine import quarantine_rejections
from tasks.store.staging import BatchContext
from tests.flows.conftest import Setup
from tests.flows.series_data import SeriesSpec, add_series
from tests.load.test_replay import ODD_UNIT, ODD_UNIT_ROW, ROUTE, TENANT, load, rows, series_id
from tests.quality.batches import US48_DEMAND, clean_batch, replace, rows_of
from tests.quality.conftest import AddUnits


def eia(dsn: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"EIA_DATABASE_URL": dsn, "EIA_ACTOR": "ops-carol"})


def listed(dsn: str, *args: str) -> dict[str, Any]:
    result = eia(dsn, "quarantine", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_quarantine_list_filters_by_reason_series_and_limit(db: str) -> None:
    load(db, rows(ODD_UNIT), rows("cents per kilowatt-hour", n=3, sector="COM"))  # 12 unknown_unit + 3 blocked
    with psycopg.connect(db) as conn:
        ctx = BatchContext.new(TENANT, "run-test", "ingest_eia_series_timescale")
        bad = Rejection("bad_period", "month 13", series_id("IND"), "2025-13", "1.0", {"period": "2025-13"})
        quarantine_rejections(conn, ctx, [bad], source=SOURCE_API, dataset=ROUTE, dlq_topic=None)
        conn.commit()

    everything = listed(db)
    assert everything["total"] == 16 and everything["shown"] == 16
    assert everything["by_reason"] == {"unknown_unit": 12, "batch_blocked": 3, "bad_period": 1}
    assert everything["rows"][0]["reason"] == "bad_period"  # newest first

    unknown = listed(db, "--reason", "unknown_unit")
    assert unknown["total"] == 12 and {r["reason"] for r in unknown["rows"]} == {"unknown_unit"}
    assert {r["series_id"] for r in unknown["rows"]} == {series_id("RES")}
    assert unknown["rows"][0]["detail"].startswith("failed quality check unknown_unit")

    commercial = listed(db, "--series", series_id("COM"))
    assert commercial["by_reason"] == {"batch_blocked": 3}
    assert [r["raw_period"] for r in commercial["rows"]] == ["2025-03", "2025-02", "2025-01"]

    both = listed(db, "--series", series_id("RES"), "--reason", "batch_blocked")
    assert both["total"] == 0 and both["rows"] == []

    limited = listed(db, "--reason", "unknown_unit", "--limit", "2")
    assert limited["total"] == 12 and limited["shown"] == 2

    table = eia(db, "quarantine", "list", "--reason", "unknown_unit", "--limit", "1")
    assert table.exit_code == 0, table.output
    assert "12 row(s) (unknown_unit 12); newest 1 shown" in table.output
    assert "no rows match" in eia(db, "quarantine", "list", "--reason", "nonexistent").output


def test_quality_report_shows_the_latest_result_per_check(db: str) -> None:
    targets = LoadTargets(outbox_topic=None, dlq_topic=None, source=SOURCE_API, dataset=None)
    batch = clean_batch()
    flagged = replace(
        batch, rows_of(batch, US48_DEMAND)[0], value=None, raw_value="n/a", value_flag="n/a", canonical_value=None
    )
    for observations in (flagged, batch):  # a warning, then a clean batch
        ctx = BatchContext.new(TENANT, "run-test", "ingest_eia_series_timescale")
        load_batch(db, ctx, NormalizeResult(list(observations), []), targets)

    result = eia(db, "quality", "report", "--json")
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    flag = checks["value_flag_known"]
    assert (flag["outcome"], flag["measured"], flag["evaluated"], flag["passed"], flag["pass_rate"]) == (
        "pass",
        0.0,
        2,
        1,
        0.5,
    )
    assert all(c["outcome"] == "pass" and c["evaluated"] == 2 for n, c in checks.items() if n != "value_flag_known")
    assert checks["batch_not_empty"]["measured"] == len(batch)

    latest = json.loads(eia(db, "quality", "report", "--json", "--batches", "1").output)["checks"]
    assert {(c["evaluated"], c["pass_rate"]) for c in latest} == {(1, 1.0)}

    table = eia(db, "quality", "report")
    assert table.exit_code == 0 and "value_flag_known" in table.output and "50% 1/2" in table.output


@pytest.mark.slow
async def test_unknown_unit_end_to_end_blocked_quarantined_then_replayed_by_the_cli(
    setup: Setup, add_units: AddUnits
) -> None:
    spec = SeriesSpec(
        "odd-units", ROUTE, "monthly", "price", ODD_UNIT, {"stateid": "US", "sectorid": "ALL"}, 12, "2025-01"
    )
    add_series(setup.server.dataset, spec)
    state = await ingest_eia_series_timescale(catalog_path=setup.catalog([spec.entry()]), return_state=True)
    run = run_result(state)
    assert state.is_failed() and run is not None and run.counts.quarantined == 12
    assert listed(setup.dsn, "--reason", "unknown_unit")["total"] == 12

    add_units(ODD_UNIT_ROW)
    replay = await asyncio.to_thread(eia, setup.dsn, "quarantine", "replay", "--reason", "unknown_unit")

    assert replay.exit_code == 0, replay.output
    assert "replayed 12 of 12 quarantined row(s): 12 loaded (12 inserted" in replay.output
    assert "0 still quarantined" in replay.output
    assert listed(setup.dsn, "--reason", "unknown_unit")["total"] == 0
    with psycopg.connect(setup.dsn) as conn:
        stored = conn.execute("SELECT count(*), min(canonical_unit) FROM eia_series_timeseries").fetchone()
        audit = conn.execute(
            "SELECT actor, details->>'loaded' FROM eia_audit_log WHERE action = 'quarantine.replay'"
        ).fetchall()
    assert stored == (12, "USD/kWh")
    assert audit == [("ops-carol", "12")]


@pytest.mark.slow
async def test_a_cli_replay_the_gate_blocks_again_exits_1_and_keeps_every_row(setup: Setup) -> None:
    load(setup.dsn, rows(ODD_UNIT, n=4))

    replay = await asyncio.to_thread(
        eia, setup.dsn, "quarantine", "replay", "--reason", "unknown_unit", "--tenant", TENANT
    )

    assert replay.exit_code == 1, replay.output
    assert "0 loaded" in replay.output and "4 still quarantined" in replay.output
    assert "blocked by unknown_unit: re-filed in quarantine" in replay.output
    assert listed(setup.dsn, "--reason", "unknown_unit")["total"] == 4
