"""Stable paging under a stand-in that reorders rows as EIA may: a 4-series monthly route of 15,000 rows
and a 12,500-point /seriesid/ series, each over 3+ pages. What is loaded is exactly what was served.

tests/eia/test_paging.py shows, with the same rows, page size and seed, that a sort on period alone
(or no sort on /seriesid/) repeats and skips rows here.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from blocks import DATABASE_BLOCK, EiaDatabase
from tasks.standin.server import FaultPlan
from tasks.store.migrations import apply_migrations
from tests.eia.paging_data import (
    SERIES_ID,
    SERIES_POINTS,
    four_series_dataset,
    four_series_entry,
    four_series_served,
    seriesid_dataset,
)
from tests.flows.conftest import Setup
from tests.flows.test_series_flow import run
from tests.support.services import scalar

pytestmark = pytest.mark.slow

SEED = 11  # as in tests/eia/test_paging.py
ROUTE_PAGE = 4_999  # not a multiple of 4: page boundaries fall inside a period's four tied rows


def database_dsn(dsn: str, name: str) -> str:
    """The DSN of database `name` on the server behind `dsn`."""
    if "://" in dsn:
        return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
    return psycopg.conninfo.make_conninfo(dsn, dbname=name)


@pytest.fixture
async def own_database(setup: Setup) -> AsyncIterator[Setup]:
    """The flow's `eia-database` block pointed at a fresh, migrated database on the session server.

    3,750 monthly periods reach back to 1714: loading them creates partitions for every one of
    those years, which the session database must not keep for every later test.
    """
    name = f"eia_paging_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(setup.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    own = dataclasses.replace(setup, dsn=database_dsn(setup.dsn, name))
    try:
        apply_migrations(own.dsn)
        await own.configure(page_size=ROUTE_PAGE)
        yield own
    finally:
        await EiaDatabase(dsn=SecretStr(setup.dsn)).save(DATABASE_BLOCK, overwrite=True)
        with psycopg.connect(setup.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def loaded(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT series_id, raw_period, raw_value FROM eia_series_timeseries").fetchall()


async def test_a_four_series_route_of_15000_rows_loads_exactly_the_served_rows_when_eia_reorders_ties(
    own_database: Setup,
) -> None:
    dataset, rows = four_series_dataset()
    own_database.server.dataset = dataset
    own_database.server.faults = FaultPlan(reorder=True, seed=SEED)

    state, result = await run(own_database, own_database.catalog([four_series_entry()]))

    assert state.is_completed(), state.message
    (entry,) = result.entries
    assert (entry.pages, entry.fetched) == (4, 15_000)
    assert (result.counts.received, result.counts.inserted, result.counts.quarantined) == (15_000, 15_000, 0)
    table = loaded(own_database.dsn)
    assert len(table) == 15_000
    assert set(table) == four_series_served(rows)  # no duplicate, no gap, every value under its series


async def test_a_12500_point_seriesid_series_loads_exactly_the_served_rows_when_eia_serves_it_unsorted(
    setup: Setup,
) -> None:
    dataset, rows = seriesid_dataset()
    setup.server.dataset = dataset
    setup.server.faults = FaultPlan(reorder=True, seed=SEED)

    state, result = await run(setup, setup.catalog([], series_ids=[SERIES_ID]))

    assert state.is_completed(), state.message
    (entry,) = result.entries
    assert (entry.pages, entry.fetched) == (3, SERIES_POINTS)
    assert (result.counts.received, result.counts.inserted, result.counts.quarantined) == (
        SERIES_POINTS,
        SERIES_POINTS,
        0,
    )
    with psycopg.connect(setup.dsn) as conn:
        table = conn.execute("SELECT series_id, raw_period, value FROM eia_series_timeseries").fetchall()
    assert len(table) == SERIES_POINTS
    assert set(table) == {(SERIES_ID, r["period"], r["value"]) for r in rows}
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_series_quarantine") == 0
