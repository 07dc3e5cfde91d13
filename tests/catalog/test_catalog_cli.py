"""`eia catalog discover|validate|plan` against the stand-in, and what the series flow makes of their output.

Acceptance: discover writes entries validate accepts and a series run loads whole; validate names
each of the five problems on one line and exits 2; plan's request counts are the ones a first run
and a rerun really send, as the stand-in counts them; --all walks the whole tree, its requests in
the usage ledger.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psycopg
from click.testing import Result
from typer.testing import CliRunner

from blocks import COST_POLICY_BLOCK, EiaCostPolicy
from flows.cli.app import app
from flows.series import SeriesRunResult, ingest_eia_series_timescale, run_result
from tasks.core.catalog import CatalogEntry, load_catalog
from tasks.standin.data import ReplayDataset, default_demo_dataset
from tasks.standin.metadata import served_routes
from tests.flows.conftest import Setup

RETAIL = "electricity/retail-sales"  # monthly, two facets (state and sector)
HOURLY = "electricity/rto/fuel-type-data"  # EIA-930, hourly
NO_VALUE = "coal/market-sales-price"  # data columns price and sales, no `value`


async def eia(dsn: str, *args: str) -> Result:
    """Runs the `eia` CLI in a thread (it starts its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env={"EIA_DATABASE_URL": dsn})


def scalar(dsn: str, query: str) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def served(dataset: ReplayDataset, entry: CatalogEntry) -> int:
    """API rows the stand-in holds for an entry from its initial_start: what a first run must fetch."""
    data = dataset.route_data(entry.route, entry.frequency)
    assert data is not None
    return sum(
        all(str(row.get(f)) in values for f, values in entry.facets.items())
        and (entry.initial_start is None or str(row["period"]) >= entry.initial_start)
        for row in data.rows
    )


async def discover_three(setup: Setup) -> Path:
    """Discovered entries for the three routes, in one catalog file."""
    first = setup.tmp / "retail.json"
    rest = setup.tmp / "rest.json"
    # The stand-in's retail rows hold the price column only (EIA's metadata lists four).
    a = await eia(setup.dsn, "catalog", "discover", RETAIL, "--data", "price", "--out", str(first))
    b = await eia(setup.dsn, "catalog", "discover", HOURLY, NO_VALUE, "--out", str(rest))
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    merged = json.loads(first.read_text())
    merged["entries"] += json.loads(rest.read_text())["entries"]
    path = setup.tmp / "discovered.json"
    path.write_text(json.dumps(merged))
    return path


async def run(catalog: Path | str) -> SeriesRunResult:
    state = await ingest_eia_series_timescale(catalog_path=str(catalog), return_state=True)
    result = run_result(state)
    assert result is not None
    return result


async def test_discovered_entries_validate_and_a_series_run_loads_every_row_they_cover(setup: Setup) -> None:
    setup.server.dataset = dataset = default_demo_dataset()

    path = await discover_three(setup)
    catalog = load_catalog(path)
    valid = await eia(setup.dsn, "catalog", "validate", str(path))
    result = await run(path)

    by_route = {e.route: e for e in catalog.entries}
    assert by_route[RETAIL].series_facets == ("stateid", "sectorid") and by_route[RETAIL].sector_facet == "sectorid"
    assert dict(by_route[RETAIL].units) == {"price": "cents per kilowatt-hour"}
    assert (by_route[HOURLY].area_facet, by_route[HOURLY].publication_lag_days) == ("respondent", 2)
    assert by_route[HOURLY].initial_start == "2019-01-01T00"  # the route's startPeriod
    assert by_route[NO_VALUE].data == ("price", "sales")
    assert valid.exit_code == 0, valid.output
    lookups = {e.route for e in catalog.entries} | {(e.route, f) for e in catalog.entries for f in e.facets}
    assert valid.stdout.strip().endswith(f"{len(catalog.entries)} entries valid ({len(lookups)} EIA requests)")
    assert len(lookups) == 4  # three routes, and the fueltype values the hourly entries are grouped by
    assert result.status == "completed", result.message
    rows = {e.id: served(dataset, e) for e in catalog.entries}
    assert {r.key: r.fetched for r in result.entries} == rows
    observations = sum(rows[e.id] * len(e.data) for e in catalog.entries)
    assert result.counts.received == observations == result.counts.inserted + result.counts.quarantined
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries") == result.counts.inserted


BROKEN: list[dict[str, Any]] = [
    {"id": "no-route", "route": "electricity/retail-salez", "frequency": "monthly", "data": ["price"]},
    {
        "id": "weekly-retail",
        "route": RETAIL,
        "frequency": "weekly",
        "data": ["price"],
        "facets": {"stateid": ["US"], "sectorid": ["RES"]},
        "series_facets": ["stateid", "sectorid"],
    },
    {
        "id": "no-column",
        "route": RETAIL,
        "frequency": "monthly",
        "data": ["prices"],
        "facets": {"stateid": ["US"], "sectorid": ["RES"]},
        "series_facets": ["stateid", "sectorid"],
    },
    {
        "id": "typo-value",
        "route": RETAIL,
        "frequency": "monthly",
        "data": ["price"],
        "facets": {"stateid": ["US"], "sectorid": ["RESIDENTIAL"]},
        "series_facets": ["stateid", "sectorid"],
    },
    {
        "id": "two-sectors-one-id",
        "route": RETAIL,
        "frequency": "monthly",
        "data": ["customers"],
        "facets": {"sectorid": ["RES", "COM"]},
        "series_facets": ["stateid"],
    },
]


async def test_validate_names_each_of_the_five_problems_on_one_line_and_exits_2(setup: Setup) -> None:
    setup.server.dataset = default_demo_dataset()
    path = setup.catalog(BROKEN)

    result = await eia(setup.dsn, "catalog", "validate", path)

    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "entry 'no-route', field 'route': EIA has no route 'electricity/retail-salez' "
        "(GET /v2/electricity/retail-salez answered 404)",
        "entry 'weekly-retail', field 'frequency': electricity/retail-sales does not offer 'weekly'; "
        "it offers monthly, quarterly, annual",
        "entry 'no-column', field 'data': electricity/retail-sales has no data column 'prices'; "
        "it has revenue, sales, price, customers",
        "entry 'typo-value', field 'facets.sectorid': EIA lists no value 'RESIDENTIAL' for facet 'sectorid' of "
        "electricity/retail-sales (a request for it returns 0 rows and no error)",
        "entry 'two-sectors-one-id', field 'series_facets': facet 'sectorid' is neither a series facet nor filtered "
        "to one value: rows of different 'sectorid' values would share one series id (add it to series_facets)",
    ]
    assert result.stderr.strip() == f"error: 5 problem(s) in {path} (4 EIA requests)"  # 2 routes, 2 facets
    assert setup.server.stats.by_path["/v2/electricity/retail-sales"] == 1  # one metadata request per route


async def test_a_series_run_fetches_no_data_for_entries_its_validation_rejects(setup: Setup) -> None:
    setup.server.dataset = default_demo_dataset()
    good = {
        "id": "good",
        "route": RETAIL,
        "frequency": "monthly",
        "data": ["price"],
        "facets": {"stateid": ["US"], "sectorid": ["RES"]},
        "series_facets": ["stateid", "sectorid"],
    }

    result = await run(setup.catalog([good, *BROKEN]))

    errors = {r.key: (r.error or "").split(":")[:2] for r in result.entries}
    assert result.status == "failed"
    assert errors == {
        "good": [""],
        "no-route": ["catalog", " route"],
        "weekly-retail": ["catalog", " frequency"],
        "no-column": ["catalog", " data"],
        "typo-value": [""],  # facet values cost a request each: `eia catalog validate` checks them
        "two-sectors-one-id": ["catalog", " series_facets"],
    }
    assert setup.server.stats.by_path["/v2/electricity/retail-sales/data/"] == 2  # good and typo-value only
    assert next(r for r in result.entries if r.key == "good").fetched == 307


async def test_plan_counts_exactly_the_requests_a_first_run_and_a_rerun_send(setup: Setup) -> None:
    setup.server.dataset = default_demo_dataset()
    await setup.configure(page_size=500)  # first runs take several pages
    path = await discover_three(setup)

    planned = await eia(setup.dsn, "catalog", "plan", str(path), "--json")
    plan = json.loads(planned.stdout)
    setup.server.stats.reset()
    first = await run(path)
    first_sent = setup.server.stats.api_requests
    setup.server.stats.reset()
    rerun = await run(path)
    rerun_sent = setup.server.stats.api_requests

    assert planned.exit_code == 0, planned.output
    assert first.status == rerun.status == "completed"
    assert (first_sent, rerun_sent) == (plan["first_run"]["requests"], plan["daily_run"]["requests"])
    assert first_sent == first.requests and rerun_sent == rerun.requests
    entries = plan["entries"]
    assert [e["first_run_requests"] for e in entries] == [
        next(r.pages for r in first.entries if r.key == e["entry"]) for e in entries
    ]
    # The request economy: a rerun with no new data costs one request per entry (entries with data
    # are not validated again); a first run adds one metadata request per route to its pages.
    assert all(e["daily_run_requests"] == 1 for e in entries)
    assert plan["validation_requests"] == {"first_run": 3, "daily_run": 0}
    assert plan["daily_run"]["requests"] == len(entries)
    assert rerun.counts.inserted == 0


async def test_discover_all_walks_the_whole_tree_and_its_requests_are_in_the_ledger(setup: Setup) -> None:
    setup.server.dataset = dataset = default_demo_dataset()
    out = setup.tmp / "all.json"

    result = await eia(setup.dsn, "catalog", "discover", "--all", "--out", str(out))

    assert result.exit_code == 0, result.output
    catalog = load_catalog(out)
    assert {e.route for e in catalog.entries} == set(served_routes(dataset))
    sent = setup.server.stats.api_requests
    assert scalar(setup.dsn, "SELECT coalesce(sum(requests), 0) FROM eia_usage_ledger") == sent
    assert f"{len(catalog.entries)} entries for {len(served_routes(dataset))} routes written to {out}; {sent} EIA" in (
        result.stderr
    )


async def test_run_series_refuses_a_catalog_whose_daily_run_exceeds_the_daily_quota(setup: Setup) -> None:
    setup.server.dataset = default_demo_dataset()
    await EiaCostPolicy(daily_request_limit=10).save(COST_POLICY_BLOCK, overwrite=True)
    try:
        result = await eia(setup.dsn, "run", "series")
    finally:  # the block outlives the test (one Prefect server per session): the next run needs the default
        await EiaCostPolicy().save(COST_POLICY_BLOCK, overwrite=True)

    entries = len(load_catalog().entries) + len(load_catalog().series_ids)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: the catalog's daily run needs at least {entries} EIA requests ({entries} entries and "
        "series ids), over the daily quota of 10: split the catalog or raise daily_request_limit "
        "(see `eia catalog plan FILE`)"
    )
    assert "OVER THE DAILY QUOTA" in result.stdout
    assert setup.server.stats.api_requests == 0


async def test_a_series_run_of_the_default_catalog_loads_every_entry_from_the_demo_standin(setup: Setup) -> None:
    setup.server.dataset = dataset = default_demo_dataset()

    state = await ingest_eia_series_timescale(return_state=True)
    result = run_result(state)

    assert result is not None and result.status == "completed", state.message
    catalog = load_catalog()
    fetched = {r.key: r.fetched for r in result.entries}
    assert {e.id: fetched[e.id] for e in catalog.entries} == {e.id: served(dataset, e) for e in catalog.entries}
    assert all(fetched[e.id] > 0 for e in catalog.entries)
    # Request economy on the default catalog: a first run is one metadata request per route plus one
    # page per entry and series id (all fit one page); the rerun is one request per entry and series id.
    routes = len({e.route for e in catalog.entries})
    assert result.requests == setup.server.stats.api_requests == routes + len(catalog.entries) + 2 == 29
    setup.server.stats.reset()
    again = run_result(await ingest_eia_series_timescale(return_state=True))
    assert again is not None and again.status == "completed"
    assert again.requests == setup.server.stats.api_requests == len(catalog.entries) + 2 == 16
