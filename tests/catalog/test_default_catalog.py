"""The default catalog, checked against the stand-in: `validate` accepts every entry, and `discover`
writes what each entry says (its facets, columns and units came from EIA's metadata)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tasks.catalog import DiscoverOptions, MetadataReader, discover_route, validate_entries
from tasks.core.catalog import load_catalog
from tasks.eia.client import ClientSettings, EiaClient
from tasks.standin.data import default_demo_dataset
from tasks.standin.server import EiaReplayServer

KEY = "catalog-test-key-0123456789abcdef01234567"
FAMILIES = {  # the runbook's EIA families and a route of each in the default catalog
    "petroleum": "petroleum/pri/spt",
    "natural gas": "natural-gas/pri/fut",
    "electricity retail sales": "electricity/retail-sales",
    "electricity operational data": "electricity/electric-power-operational-data",
    "EIA-930": "electricity/rto/fuel-type-data",
    "coal": "coal/market-sales-price",
    "total energy": "total-energy",
    "SEDS": "seds",
    "international": "international",
    "STEO": "steo",
    "AEO": "aeo/2025",
}
# Entries written by `eia catalog discover` (their every field but id and description is its output).
DISCOVERED = {
    "international-hong-kong-renewable-generation",
    "seds-state-energy-consumption-and-prices",
    "aeo2025-total-energy-consumption-history",
    "petroleum-pipeline-movements-padd2-to-padd1",
    "steo-opec-unplanned-outages",
}


@pytest.fixture(scope="module")
def demo() -> Iterator[EiaReplayServer]:
    with EiaReplayServer(default_demo_dataset()) as server:
        yield server


@pytest.fixture
async def reader(demo: EiaReplayServer) -> AsyncIterator[MetadataReader]:
    # No Prefect server here: the in-process limiter alone paces these requests.
    settings = ClientSettings(demo.api_url, KEY, requests_per_second=500, burst=50, use_prefect_limits=False)
    async with EiaClient(settings) as client:
        yield MetadataReader(client)


def test_the_default_catalog_covers_every_eia_family_with_a_publication_lag() -> None:
    catalog = load_catalog()

    assert {family: route for family, route in FAMILIES.items() if route in {e.route for e in catalog.entries}} == (
        FAMILIES
    )
    assert all(e.publication_lag_days for e in catalog.entries)
    assert {e.id for e in catalog.entries} >= DISCOVERED


async def test_validate_accepts_every_default_catalog_entry(reader: MetadataReader) -> None:
    catalog = load_catalog()

    assert [str(p) for p in await validate_entries(reader, catalog.entries)] == []
    routes = {e.route for e in catalog.entries}
    facets = {(e.route, f) for e in catalog.entries for f in e.facets}
    assert reader.requests == len(routes) + len(facets)  # one per route, one per filtered facet


async def test_discover_writes_what_each_default_entry_says(reader: MetadataReader) -> None:
    for entry in load_catalog().entries:
        options = DiscoverOptions(frequency=entry.frequency, facets=entry.facets, data=entry.data, max_pages=10**6)
        (found,) = await discover_route(reader, entry.route, options)

        shape = ("route", "frequency", "data", "facets", "series_facets", "area_facet", "sector_facet", "units")
        assert {k: getattr(found, k) for k in shape} == {k: getattr(entry, k) for k in shape}, entry.id
        if entry.id in DISCOVERED:
            assert (found.initial_start, found.publication_lag_days) == (
                entry.initial_start,
                entry.publication_lag_days,
            )


def test_the_standin_serves_facet_values_and_route_children_in_eias_shapes(demo: EiaReplayServer) -> None:
    with httpx.Client(base_url=demo.api_url, params={"api_key": KEY}) as api:
        sectors = api.get("/electricity/retail-sales/facet/sectorid").json()
        root = api.get("/").json()["response"]
        electricity = api.get("/electricity").json()["response"]
        unknown = api.get("/electricity/retail-sales/facet/nosuchfacet")
        facets = api.get("/electricity/retail-sales/facet").json()["response"]

    assert sectors["request"]["command"] == "/v2/electricity/retail-sales/facet/sectorid/"
    assert sectors["response"] == {
        "totalFacets": 4,
        "facets": [
            {"id": "ALL", "name": "all sectors", "alias": "(ALL) all sectors"},
            {"id": "COM", "name": "commercial", "alias": "(COM) commercial"},
            {"id": "IND", "name": "industrial", "alias": "(IND) industrial"},
            {"id": "RES", "name": "residential", "alias": "(RES) residential"},
        ],
    }
    assert [r["id"] for r in root["routes"]] == [
        "aeo",
        "coal",
        "electricity",
        "international",
        "natural-gas",
        "petroleum",
        "seds",
        "steo",
        "total-energy",
    ]
    assert [r["id"] for r in electricity["routes"]] == ["electric-power-operational-data", "retail-sales", "rto"]
    assert unknown.status_code == 404 and unknown.json()["code"] == 404
    assert facets == {
        "totalFacets": 2,
        "facets": [
            {"id": "stateid", "description": "State / Census Region"},
            {"id": "sectorid", "description": "Sector"},
        ],
    }
