"""The local EIA replay server answers like EIA API v2 and the bulk site, and injects faults on request."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasks.standin.data import (
    DATE_FORMATS,
    SAMPLES_DIR,
    ReplayDataset,
    data_and_unit_columns,
    default_demo_dataset,
    load_samples,
    synthetic_route_series,
)
from tasks.standin.server import API_KEY_INVALID_MESSAGE, EiaReplayServer, FaultPlan, php_params

KEY = "k" * 40  # EIA keys are 40 characters
RETAIL = "/electricity/retail-sales/data/"
FUEL = "/electricity/rto/fuel-type-data/data/"


def retail_query(**extra: str) -> dict[str, str]:
    return {
        "api_key": KEY,
        "frequency": "monthly",
        "data[0]": "price",
        "facets[stateid][]": "US",
        "facets[sectorid][]": "ALL",
        "sort[0][column]": "period",
        "sort[0][direction]": "asc",
        **extra,
    }


@pytest.fixture(scope="module")
def server() -> Iterator[EiaReplayServer]:
    with EiaReplayServer(default_demo_dataset()) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_server(server: EiaReplayServer) -> None:
    server.faults = FaultPlan()
    server.stats.reset()


@pytest.fixture
def api(server: EiaReplayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url, timeout=5) as client:
        yield client


def hourly_dataset(n_hours: int) -> ReplayDataset:
    dataset = ReplayDataset(routes={}, seriesid={})
    rows = synthetic_route_series(
        "electricity/rto/fuel-type-data",
        "hourly",
        n_points=n_hours,
        start="2026-01-01T00",
        facets={"respondent": "US48"},
        extra={"respondent-name": "United States Lower 48", "fueltype": "NG", "type-name": "Natural Gas"},
        unit="megawatthours",
    )
    dataset.add_route_rows("electricity/rto/fuel-type-data", "hourly", DATE_FORMATS["hourly"], rows)
    return dataset


def recorded_answer_with_key(sample: str) -> bytes:
    """A real EIA body as EIA sends it to a caller whose first query parameter is api_key."""
    raw = (SAMPLES_DIR / sample).read_bytes()
    return raw.replace(b'"params":{', b'"params":{"api_key":"' + KEY.encode() + b'",', 1)


# --- fidelity to recorded EIA answers ----------------------------------------------------------


def test_a_request_like_a_recorded_one_gets_the_recorded_answer_byte_for_byte(api: httpx.Client) -> None:
    response = api.get(RETAIL, params=retail_query(offset="0", length="2"))

    assert response.status_code == 200
    assert response.content == recorded_answer_with_key("fc_v2_retail_sales_first_rows_warning.json")


def test_the_recorded_henry_hub_query_gets_the_15_recorded_trading_days_newest_first(
    api: httpx.Client,
) -> None:
    params = {
        "api_key": KEY,
        "frequency": "daily",
        "data[0]": "value",
        "facets[series][]": "RNGWHHD",
        "start": "2026-09-01",
        "sort[0][column]": "period",
        "sort[0][direction]": "desc",
        "offset": "0",
        "length": "5000",
    }

    response = api.get("/natural-gas/pri/fut/data/", params=params)

    assert response.content == recorded_answer_with_key("fc_v2_ng_pri_fut_henry_hub_daily_2026-09.json")
    assert "description" not in response.json()["response"]  # this route has none at EIA either


def test_route_metadata_is_the_recorded_metadata_with_the_request_echoed(api: httpx.Client) -> None:
    body = api.get("/electricity/retail-sales/", params={"api_key": KEY}).json()
    recorded = json.loads((SAMPLES_DIR / "fc_v2_meta_retail_sales.json").read_text())

    assert body["response"] == recorded["response"]
    assert body["request"] == {"command": "/v2/electricity/retail-sales/", "params": {"api_key": KEY}}


def test_total_is_a_string_on_data_routes_and_a_number_on_seriesid(api: httpx.Client) -> None:
    route = api.get(RETAIL, params=retail_query(length="1")).json()["response"]
    series = api.get("/seriesid/INTL.29-12-HKG-BKWH.A", params={"api_key": KEY}).json()["response"]

    assert route["total"] == "307"
    assert route["data"][0]["price"] == "6.75"
    assert series["total"] == 44
    assert series["data"][0] == {**series["data"][0], "period": 2023, "value": "NA", "dataFlagId": 2}
    assert series["data"][1]["value"] == 0.230242794


def test_api_key_is_echoed_in_request_params_as_eia_does(api: httpx.Client) -> None:
    body = api.get(RETAIL, params=retail_query(length="1")).json()

    assert body["request"]["params"] == {
        "api_key": KEY,
        "frequency": "monthly",
        "data": ["price"],
        "facets": {"stateid": ["US"], "sectorid": ["ALL"]},
        "sort": [{"column": "period", "direction": "asc"}],
        "length": "1",
    }


def test_query_parameters_are_read_the_way_eias_php_backend_reads_them() -> None:
    assert php_params("data[]=value&data[]=price&facets[type][]=D&sort[0][column]=period&x=1") == {
        "data": ["value", "price"],
        "facets": {"type": ["D"]},
        "sort": [{"column": "period"}],
        "x": "1",
    }
    assert php_params("") == []  # PHP's empty array, as in the recorded metadata answer


def test_every_api_answer_forbids_caching_like_the_real_gateway(api: httpx.Client) -> None:
    answers = [
        api.get(RETAIL, params=retail_query(length="1")),
        api.get(RETAIL),
        api.get("/nope/data/", params={"api_key": KEY}),
    ]

    assert [a.status_code for a in answers] == [200, 403, 404]
    for answer in answers:
        assert answer.headers["cache-control"] == "max-age=0, no-cache, no-store"
        assert answer.headers["content-type"] == "application/json"
        assert "x-ratelimit-limit" not in answer.headers


# --- paging ------------------------------------------------------------------------------------


def test_a_page_never_holds_more_than_5000_rows_and_total_counts_every_matching_row() -> None:
    with EiaReplayServer(hourly_dataset(12_000)) as big:
        params = {"api_key": KEY, "frequency": "hourly", "data[]": "value", "length": "9000"}
        body = httpx.get(f"{big.api_url}{FUEL}", params=params).json()

    assert len(body["response"]["data"]) == 5000
    assert body["response"]["total"] == "12000"
    assert body["warnings"][0]["warning"] == "incomplete return"


def test_paging_by_offset_visits_every_matching_row_once_in_period_order(api: httpx.Client) -> None:
    seen: list[tuple[str, str]] = []
    while True:
        params = {
            "api_key": KEY,
            "frequency": "hourly",
            "data[0]": "value",
            "facets[respondent][]": "US48",
            "start": "2026-09-01T00",
            "sort[0][column]": "period",
            "sort[0][direction]": "asc",
            "offset": str(len(seen)),
            "length": "1000",
        }
        page = api.get(FUEL, params=params).json()["response"]
        seen += [(row["period"], row["fueltype"]) for row in page["data"]]
        if len(page["data"]) < 1000:
            break

    assert len(seen) == len(set(seen)) == int(page["total"]) == 720 * 5
    assert [period for period, _ in seen] == sorted(period for period, _ in seen)


def test_sorting_by_period_keeps_the_stored_order_among_rows_of_the_same_period(api: httpx.Client) -> None:
    params = {
        "api_key": KEY,
        "frequency": "hourly",
        "data[0]": "value",
        "sort[0][column]": "period",
        "sort[0][direction]": "desc",
        "length": "10",
    }
    rows = api.get(FUEL, params=params).json()["response"]["data"]

    assert [r["period"] for r in rows[:5]] == ["2026-09-30T23"] * 5
    assert [r["fueltype"] for r in rows[:5]] == ["COL", "NG", "NUC", "SUN", "WND"]


def test_incomplete_return_warning_sits_at_the_top_level_on_2_1_14_and_inside_response_before() -> None:
    dataset = hourly_dataset(30)
    params = {"api_key": KEY, "frequency": "hourly", "data[]": "value", "length": "10"}
    with (
        EiaReplayServer(dataset) as current,
        EiaReplayServer(dataset, api_version="2.1.7", warnings_at_top_level=False) as older,
    ):
        new_body = httpx.get(f"{current.api_url}{FUEL}", params=params).json()
        old_body = httpx.get(f"{older.api_url}{FUEL}", params=params).json()

    assert list(new_body) == ["warnings", "response", "request", "apiVersion", "ExcelAddInVersion"]
    assert "warnings" not in new_body["response"]
    assert "warnings" not in old_body
    assert old_body["response"]["warnings"] == new_body["warnings"]
    assert old_body["apiVersion"] == "2.1.7"


def test_a_page_holding_every_matching_row_carries_no_warning(api: httpx.Client) -> None:
    body = api.get(RETAIL, params=retail_query()).json()

    assert len(body["response"]["data"]) == 307
    assert "warnings" not in body


def test_seriesid_pages_with_the_same_cap_and_window_as_data_routes() -> None:
    with EiaReplayServer(load_samples(), page_cap=100) as capped:
        url = f"{capped.api_url}/seriesid/STEO.PATC_WORLD.M"
        everything = httpx.get(url, params={"api_key": KEY}).json()
        window = httpx.get(url, params={"api_key": KEY, "start": "2020-01", "end": "2024-12"}).json()

    assert (everything["response"]["total"], len(everything["response"]["data"])) == (432, 100)
    assert everything["warnings"][0]["description"].startswith("The API can only return 100 rows")
    assert (window["response"]["total"], len(window["response"]["data"])) == (60, 60)
    assert {row["period"][:4] for row in window["response"]["data"]} == {
        "2020",
        "2021",
        "2022",
        "2023",
        "2024",
    }
    assert "warnings" not in window
    assert window["request"]["command"] == "/v2/seriesid/STEO.PATC_WORLD.M"


# --- filtering ---------------------------------------------------------------------------------


def test_facets_start_end_and_data_columns_select_rows_and_columns_like_eia(api: httpx.Client) -> None:
    params = {
        "api_key": KEY,
        "frequency": "annual",
        "data[0]": "price",
        "facets[stateRegionId][]": ["AK", "WY"],
        "facets[marketTypeId][]": "OM",
        "start": "2010",
        "end": "2012",
    }
    rows = api.get("/coal/market-sales-price/data/", params=params).json()["response"]["data"]

    assert [(r["period"], r["stateRegionId"]) for r in rows] == [
        (year, state) for state in ("WY", "AK") for year in ("2010", "2011", "2012")
    ]
    assert all("sales" not in r and "sales-units" not in r for r in rows)
    assert {r["price"] for r in rows if r["stateRegionId"] == "AK"} == {"w"}  # withheld, kept as a token
    assert rows[0]["price-units"] == "dollars per short ton"


def test_without_data_columns_rows_carry_only_period_and_descriptive_columns(api: httpx.Client) -> None:
    params = {"api_key": KEY, "frequency": "monthly", "facets[sectorid][]": "RES", "length": "1"}
    row = api.get(RETAIL, params=params).json()["response"]["data"][0]

    assert set(row) == {"period", "stateid", "stateDescription", "sectorid", "sectorName"}


@pytest.mark.parametrize(
    ("path", "params", "status", "message_start"),
    [
        ("/nope/data/", {}, 404, "Invalid route 'nope'"),
        ("/seriesid/ELEC.NOPE.A", {}, 404, "invalid series_id 'ELEC.NOPE.A'"),
        (RETAIL, {"frequency": "hourly"}, 400, "Invalid frequency 'hourly'"),
        (RETAIL, {"facets[nope][]": "x"}, 400, "Invalid facet 'nope'"),
        (RETAIL, {"data[0]": "nope"}, 400, "Invalid data 'nope'"),
        (RETAIL, {"length": "-1"}, 400, "Invalid length '-1'"),
        (RETAIL, {"sort[0][column]": "period", "sort[0][direction]": "up"}, 400, "Invalid sort direction"),
    ],
)
def test_eia_application_errors_answer_error_and_code(
    api: httpx.Client, path: str, params: dict[str, str], status: int, message_start: str
) -> None:
    response = api.get(path, params={"api_key": KEY, **params})

    assert response.status_code == status
    assert response.json()["code"] == status
    assert response.json()["error"].startswith(message_start)


def test_the_dataset_can_be_replaced_between_requests(server: EiaReplayServer, api: httpx.Client) -> None:
    original = server.dataset
    try:
        server.dataset = hourly_dataset(3)
        total = api.get(FUEL, params={"api_key": KEY, "data[]": "value"}).json()["response"]["total"]
        assert total == "3"
        server.dataset.add_route_rows(
            "electricity/rto/fuel-type-data",
            "hourly",
            DATE_FORMATS["hourly"],
            [{"period": "2026-01-01T03", "respondent": "US48", "value": "1", "value-units": "megawatthours"}],
        )
        total = api.get(FUEL, params={"api_key": KEY, "data[]": "value"}).json()["response"]["total"]
        assert total == "4"
    finally:
        server.dataset = original


def test_a_revised_row_is_served_from_the_next_first_page_on(server: EiaReplayServer, api: httpx.Client) -> None:
    rows = server.dataset.routes["total-energy"][0].rows
    index = next(i for i, row in enumerate(rows) if row["period"] == "2025-12")
    original = rows[index]
    params = {"api_key": KEY, "data[0]": "value", "start": "2025-12", "end": "2025-12"}
    api.get("/total-energy/data/", params=params)
    try:
        rows[index] = {**original, "value": "9.999"}  # EIA revises history in place
        revised = api.get("/total-energy/data/", params=params).json()["response"]["data"]
    finally:
        rows[index] = original

    assert [row["value"] for row in revised] == ["9.999"]


# --- faults ------------------------------------------------------------------------------------


def test_a_missing_key_is_api_key_missing_and_a_rejected_key_is_api_key_invalid(
    server: EiaReplayServer, api: httpx.Client
) -> None:
    missing = api.get(RETAIL, params={"api_key": ""})
    server.faults.api_key_invalid = True
    invalid = api.get(RETAIL, params=retail_query())

    assert missing.status_code == invalid.status_code == 403
    assert missing.json()["error"]["code"] == "API_KEY_MISSING"
    assert invalid.json() == {"error": {"code": "API_KEY_INVALID", "message": API_KEY_INVALID_MESSAGE}}
    assert "register for a new one at https://www.eia.gov/opendata/register.php" in API_KEY_INVALID_MESSAGE


def test_a_429_burst_answers_retry_after_then_recovers(server: EiaReplayServer, api: httpx.Client) -> None:
    server.faults.burst_429 = 2
    server.faults.retry_after_s = 7

    answers = [api.get(RETAIL, params=retail_query(length="1")) for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "7"
    assert answers[0].json()["error"]["code"] == "OVER_RATE_LIMIT"
    assert server.faults.burst_429 == 0


def test_a_429_burst_can_say_retry_after_as_an_http_date(server: EiaReplayServer, api: httpx.Client) -> None:
    server.faults.burst_429 = 1
    server.faults.retry_after_s = 30
    server.faults.retry_after_date = True

    answer = api.get(RETAIL, params=retail_query(length="1"))

    until = parsedate_to_datetime(answer.headers["retry-after"])
    assert answer.status_code == 429
    assert answer.headers["retry-after"].endswith(" GMT")
    assert 29 <= until.timestamp() - server.stats.api_arrivals[0][0] <= 30  # whole seconds, rounded down


def test_counted_faults_cut_then_hold_the_next_good_answers_and_skip_errors(
    server: EiaReplayServer, api: httpx.Client
) -> None:
    server.faults.cut_next, server.faults.hang_next, server.faults.timeout_sleep_s = 1, 1, 0.3

    missing = api.get("/natural-gas/no/such/route/data/", params=retail_query(length="1"))
    cut = api.get(RETAIL, params=retail_query(length="1"))
    with pytest.raises(httpx.ReadTimeout):
        api.get(RETAIL, params=retail_query(length="1"), timeout=0.1)
    whole = api.get(RETAIL, params=retail_query(length="1"))

    assert missing.status_code == 404  # an error answer does not use up a counted fault
    assert cut.status_code == 200 and len(cut.content) < len(whole.content)
    with pytest.raises(ValueError):
        cut.json()
    assert whole.json()["response"]["data"]
    assert (server.faults.cut_next, server.faults.hang_next) == (0, 0)


def test_an_outage_fails_every_api_request_but_not_the_bulk_site(server: EiaReplayServer) -> None:
    server.faults.outage = True

    api_answer = httpx.get(f"{server.api_url}{RETAIL}", params=retail_query())
    bulk_answer = httpx.get(f"{server.bulk_url}/manifest.txt")

    assert api_answer.status_code == 500
    assert api_answer.json()["code"] == 500
    assert bulk_answer.status_code == 200


def test_error_rate_fails_a_fraction_of_requests_and_repeats_exactly_for_a_seed(
    server: EiaReplayServer, api: httpx.Client
) -> None:
    def run() -> list[int]:
        server.faults = FaultPlan(error_rate=0.5, seed=7)
        return [api.get(RETAIL, params=retail_query(length="1")).status_code for _ in range(20)]

    first, second = run(), run()

    assert first == second
    assert set(first) == {200, 500}


def test_malformed_answers_are_200_with_truncated_json(server: EiaReplayServer, api: httpx.Client) -> None:
    server.faults.malformed_rate = 1.0

    answer = api.get(RETAIL, params=retail_query())

    assert answer.status_code == 200
    assert answer.content.startswith(b'{"response":{"total":"307"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)


def test_an_error_in_a_200_body_contradicts_the_status(server: EiaReplayServer, api: httpx.Client) -> None:
    server.faults.error_200_body = True

    answer = api.get(RETAIL, params=retail_query(length="1"))

    assert answer.status_code == 200
    assert set(answer.json()) == {"error", "code"}


def test_total_inflation_makes_total_lie_while_the_rows_stay_the_same(
    server: EiaReplayServer, api: httpx.Client
) -> None:
    server.faults.total_inflation = 218  # the petroleum/move/pipe sample really claimed 436 for 218 rows

    body = api.get("/petroleum/move/pipe/data/", params={"api_key": KEY, "data[]": "value"}).json()

    assert body["response"]["total"] == "436"
    assert len(body["response"]["data"]) == 218
    assert "warnings" not in body


def test_a_timeout_fault_holds_the_answer_back(server: EiaReplayServer) -> None:
    server.faults.timeout_rate = 1.0
    server.faults.timeout_sleep_s = 0.4

    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.api_url}{RETAIL}", params=retail_query(length="1"), timeout=0.1)
    started = time.monotonic()
    answer = httpx.get(f"{server.api_url}{RETAIL}", params=retail_query(length="1"), timeout=5)

    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.4


def test_in_flight_count_peaks_at_the_number_of_concurrent_clients(server: EiaReplayServer) -> None:
    server.faults.latency_s = 0.2
    start_together = threading.Barrier(3)

    def client() -> None:
        with httpx.Client(base_url=server.api_url, timeout=5) as own:
            start_together.wait()
            for _ in range(2):
                own.get(RETAIL, params=retail_query(length="1")).raise_for_status()

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert server.stats.max_in_flight == 3
    assert server.stats.in_flight == 0
    assert server.stats.api_requests == 6
    assert server.stats.statuses == {200: 6}


def test_every_api_request_is_timed_as_it_arrives(server: EiaReplayServer, api: httpx.Client) -> None:
    before = time.time()
    api.get(RETAIL, params=retail_query(length="1"))
    api.get("/seriesid/STEO.PATC_WORLD.M", params={"api_key": KEY, "length": "1"})
    httpx.get(f"{server.bulk_url}/manifest.txt")  # not an API request

    arrivals = server.stats.api_arrivals
    assert [path for _, path in arrivals] == [f"/v2{RETAIL}", "/v2/seriesid/STEO.PATC_WORLD.M"]
    assert before <= arrivals[0][0] <= arrivals[1][0] <= time.time()
    server.stats.reset()
    assert server.stats.api_arrivals == []


# --- reordering, as EIA may --------------------------------------------------------------------


def fuel_rows(api: httpx.Client, **extra: str) -> list[dict[str, Any]]:
    """Ten hours of fuel-type rows (5 fuel types an hour), sorted by period unless `extra` says otherwise."""
    params = {
        "api_key": KEY,
        "frequency": "hourly",
        "data[0]": "value",
        "facets[respondent][]": "US48",
        "start": "2026-09-01T00",
        "end": "2026-09-01T09",
        "sort[0][column]": "period",
        "sort[0][direction]": "asc",
        **extra,
    }
    data: list[dict[str, Any]] = api.get(FUEL, params=params).json()["response"]["data"]
    return data


def fuel_order(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["period"], r["fueltype"]) for r in rows]


def test_with_reorder_rows_tying_on_the_sort_come_in_a_new_order_on_every_request(
    server: EiaReplayServer, api: httpx.Client
) -> None:
    server.faults = FaultPlan(reorder=True, seed=5)

    first, second = fuel_rows(api), fuel_rows(api)
    # A later page reuses the first page's selection from the cache, and is reordered all the same.
    later_first, later_second = fuel_rows(api, offset="5"), fuel_rows(api, offset="5")

    assert len(first) == 50 and len(later_first) == 45
    for one, other in ((first, second), (later_first, later_second)):
        assert fuel_order(one) != fuel_order(other)
        assert sorted(fuel_order(one)) == sorted(fuel_order(other))  # the same rows
        assert [p for p, _ in fuel_order(one)] == [p for p, _ in fuel_order(other)]  # the sort still holds
        assert [p for p, _ in fuel_order(one)] == sorted(p for p, _ in fuel_order(one))


def test_with_reorder_a_request_without_a_sort_gets_its_rows_unsorted(
    server: EiaReplayServer, api: httpx.Client
) -> None:
    params = {"api_key": KEY, "frequency": "monthly", "data[0]": "price", "facets[sectorid][]": "RES"}
    stored = api.get(RETAIL, params=params).json()["response"]["data"]
    server.faults = FaultPlan(reorder=True, seed=5)

    unsorted = api.get(RETAIL, params=params).json()["response"]["data"]

    periods = [r["period"] for r in unsorted]
    assert periods != sorted(periods)
    assert sorted(periods) == [r["period"] for r in stored] == sorted(r["period"] for r in stored)
    assert len(set(periods)) == len(periods) == 307


def test_with_reorder_a_sort_without_ties_gives_the_same_order_every_time(
    server: EiaReplayServer, api: httpx.Client
) -> None:
    server.faults = FaultPlan(reorder=True, seed=5)
    total_order = {"sort[1][column]": "fueltype", "sort[1][direction]": "asc"}

    answers = [fuel_order(fuel_rows(api, **total_order)) for _ in range(3)]

    assert answers[0] == answers[1] == answers[2] == sorted(answers[0])


def test_reorder_repeats_exactly_for_a_seed(server: EiaReplayServer, api: httpx.Client) -> None:
    def run(seed: int) -> list[list[tuple[str, str]]]:
        server.faults = FaultPlan(reorder=True, seed=seed)
        return [fuel_order(fuel_rows(api)) for _ in range(3)]

    assert run(5) == run(5)
    assert run(5) != run(6)


# --- bulk --------------------------------------------------------------------------------------


def test_the_manifest_points_every_access_url_at_the_server(server: EiaReplayServer) -> None:
    manifest = httpx.get(f"{server.bulk_url}/manifest.txt").json()

    # Every dataset the bulk flow loads by default (flows/bulk.py DEFAULT_DATASETS).
    assert {ident: e["accessURL"] for ident, e in manifest["dataset"].items()} == {
        code: f"{server.bulk_url}/{code}.zip" for code in ("ELEC", "PET", "NG", "COAL", "TOTAL", "EBA")
    }
    assert manifest["dataset"]["ELEC"]["modified"] == "2026-09-23T17:01:12-04:00"
    assert manifest["dataset"]["EBA"]["last_updated"] == "2026-09-29T05:04:05-04:00"
    # Entries the trimmed manifest sample lacks: stamped with their newest line's last_updated.
    assert manifest["dataset"]["TOTAL"]["last_updated"] == "2021-04-26T13:51:38-04:00"
    assert manifest["dataset"]["PET"]["identifier"] == "PET"
    assert server.stats.manifest_requests == 1


def archive_text(server: EiaReplayServer, code: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(httpx.get(f"{server.bulk_url}/{code}.zip").content)) as archive:
        assert archive.namelist() == [f"{code}.txt"]
        return archive.read(f"{code}.txt")


def test_the_pet_coal_and_total_archives_hold_the_real_bulk_lines(server: EiaReplayServer) -> None:
    assert archive_text(server, "PET") == (SAMPLES_DIR / "dc_bulk_PET_lines.txt").read_bytes()
    assert archive_text(server, "COAL") == (SAMPLES_DIR / "dc_bulk_COAL_lines_selected.txt").read_bytes()
    mixed = (SAMPLES_DIR / "dc_bulk_INTL_TOTAL_SEDS_lines.txt").read_bytes().splitlines(keepends=True)
    assert archive_text(server, "TOTAL") == b"".join(line for line in mixed if line.startswith(b'{"series_id":"TOTAL.'))


def test_the_eba_archive_holds_the_real_eia_930_rows_as_hourly_series_lines(server: EiaReplayServer) -> None:
    lines = [json.loads(line) for line in archive_text(server, "EBA").splitlines()]

    # fc_v2_rto_fuel_type_hourly_first_rows.json: US48 coal 109616 MWh, natural gas 130005 MWh at 2019-01-01T00 UTC.
    assert [(s["series_id"], s["f"], s["units"], s["data"]) for s in lines] == [
        ("EBA.US48-ALL.NG.COL.H", "H", "megawatthours", [["20190101T00Z", 109616]]),
        ("EBA.US48-ALL.NG.NG.H", "H", "megawatthours", [["20190101T00Z", 130005]]),
    ]


def test_the_elec_archive_holds_the_real_bulk_lines(server: EiaReplayServer) -> None:
    answer = httpx.get(f"{server.bulk_url}/ELEC.zip")

    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert archive.namelist() == ["ELEC.txt"]
        text = archive.read("ELEC.txt")
    assert text == (SAMPLES_DIR / "pudl_bulk_ELEC_lines.txt").read_bytes()
    assert answer.headers["content-type"] == "application/zip"


def test_a_zip_served_with_etag_answers_304_to_if_none_match_and_if_modified_since(
    server: EiaReplayServer,
) -> None:
    url = f"{server.bulk_url}/ELEC.zip"
    first = httpx.get(url)

    by_tag = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
    by_date = httpx.get(url, headers={"If-Modified-Since": first.headers["last-modified"]})
    stale_tag = httpx.get(url, headers={"If-None-Match": '"old"', "If-Modified-Since": formatdate(usegmt=True)})
    older_copy = httpx.get(url, headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})

    assert first.status_code == 200
    assert first.headers["last-modified"] == "Wed, 23 Sep 2026 21:01:12 GMT"
    assert [by_tag.status_code, by_date.status_code] == [304, 304]
    assert by_tag.content == b""
    assert [stale_tag.status_code, older_copy.status_code] == [200, 200]  # If-None-Match wins when present
    assert server.stats.zip_requests == 3


def test_an_unknown_bulk_file_is_404(server: EiaReplayServer) -> None:
    assert httpx.get(f"{server.bulk_url}/SEDS.zip").status_code == 404
    assert server.stats.zip_requests == 0


# --- datasets ----------------------------------------------------------------------------------


def test_each_real_sample_is_served_under_its_route_with_its_own_rows() -> None:
    dataset = load_samples()

    assert {r: [d.frequency for d in ds] for r, ds in dataset.routes.items()} == {
        "electricity/electric-power-operational-data": ["monthly"],
        "natural-gas/pri/fut": ["daily"],
        "electricity/retail-sales": ["monthly"],
        "electricity/rto/fuel-type-data": ["hourly"],
        "petroleum/move/pipe": ["monthly"],
        "steo": ["monthly"],
    }
    assert len(dataset.routes["petroleum/move/pipe"][0].rows) == 218
    assert sorted(dataset.seriesid) == ["INTL.29-12-HKG-BKWH.A", "STEO.PATC_WORLD.M"]
    assert sorted(dataset.route_meta) == [
        "electricity/retail-sales",
        "electricity/rto/fuel-type-data",
        "natural-gas/pri/fut",
    ]


@pytest.mark.parametrize(
    ("frequency", "start", "tokens"),
    [
        ("annual", "2023", ["2023", "2024"]),
        ("quarterly", "2024-Q4", ["2024-Q4", "2025-Q1"]),
        ("monthly", "2024-12", ["2024-12", "2025-01"]),
        ("weekly", "2024-12-27", ["2024-12-27", "2025-01-03"]),
        ("daily", "2024-12-31", ["2024-12-31", "2025-01-01"]),
        ("hourly", "2024-12-31T23", ["2024-12-31T23", "2025-01-01T00"]),
        ("local-hourly", "2023-03-20T23-07", ["2023-03-20T23-07", "2023-03-21T00-07"]),
    ],
)
def test_synthetic_series_use_eias_period_tokens_for_each_frequency(
    frequency: str, start: str, tokens: list[str]
) -> None:
    rows = synthetic_route_series(
        "test/route",
        frequency,
        n_points=2,
        start=start,
        facets={"series": "X"},
        unit="$/GAL",
        unit_column="units",
        value_fn=lambda i: ["6.75", None][i],
    )

    assert rows == [
        {"period": tokens[0], "series": "X", "value": "6.75", "units": "$/GAL"},
        {"period": tokens[1], "series": "X", "value": None, "units": "$/GAL"},
    ]


def test_a_synthetic_start_in_the_wrong_shape_is_refused_naming_the_frequency() -> None:
    with pytest.raises(ValueError, match="'2024-01-01T00' is not a local-hourly period token"):
        synthetic_route_series("r", "local-hourly", n_points=1, start="2024-01-01T00", facets={}, unit="MWh")


DEFAULT_CATALOG_SERIES = [
    ("electricity/retail-sales", "monthly", {"stateid": "US", "sectorid": "RES"}, "price"),
    ("electricity/rto/fuel-type-data", "hourly", {"respondent": "US48", "fueltype": "SUN"}, "value"),
    ("electricity/rto/region-data", "local-hourly", {"respondent": "CISO", "type": "D"}, "value"),
    ("natural-gas/pri/fut", "daily", {"series": "RNGWHHD"}, "value"),
    ("petroleum/pri/spt", "weekly", {"series": "EER_EPMRU_PF4_Y35NY_DPG"}, "value"),
    ("coal/market-sales-price", "annual", {"stateRegionId": "US", "marketTypeId": "TOT"}, "sales"),
    ("total-energy", "monthly", {"msn": "TETCBUS"}, "value"),
    ("electricity/electric-power-operational-data", "quarterly", {"fueltypeid": "ALL"}, "generation"),
    ("steo", "monthly", {"seriesId": "PATC_WORLD"}, "value"),
]


@pytest.mark.parametrize(("route", "frequency", "facets", "column"), DEFAULT_CATALOG_SERIES)
def test_the_demo_dataset_serves_each_default_catalog_series(
    api: httpx.Client, route: str, frequency: str, facets: dict[str, str], column: str
) -> None:
    params: dict[str, Any] = {"api_key": KEY, "frequency": frequency, "data[0]": column}
    params |= {f"facets[{facet}][]": value for facet, value in facets.items()}
    body = api.get(f"/{route}/data/", params=params).json()["response"]

    assert int(body["total"]) >= 20
    assert body["dateFormat"] == DATE_FORMATS[frequency]
    assert all(isinstance(row[column], str) for row in body["data"])
    assert max(row["period"] for row in body["data"])[:10] <= "2026-11-01"


def test_the_demo_dataset_is_deterministic_and_has_one_row_per_series_and_period() -> None:
    first, second = default_demo_dataset(), default_demo_dataset()

    assert first == second
    for route_data in first.routes.values():
        for data in route_data:
            # A row's identity: everything but its values (period, facets, descriptive columns).
            keys = [tuple(k for k in row.items() if k[0] not in data_and_unit_columns(row)) for row in data.rows]
            assert len(keys) == len(set(keys)), f"{data.route} {data.frequency} repeats a series period"


def test_the_packaged_samples_ship_no_agpl_files_and_the_notice_names_every_file() -> None:
    shipped = sorted(p.name for p in SAMPLES_DIR.iterdir() if p.name != "NOTICE.md")
    notice = (SAMPLES_DIR / "NOTICE.md").read_text()

    assert not [name for name in shipped if name.startswith("openbb_")]
    assert [name for name in shipped if f"`{name}`" not in notice] == []
    assert "Source: U.S. Energy Information Administration" in notice


# --- lifecycle ---------------------------------------------------------------------------------


def test_stopping_the_server_closes_its_port() -> None:
    replay = EiaReplayServer(hourly_dataset(1)).start()
    port = replay.port
    assert httpx.get(f"{replay.api_url}{FUEL}", params={"api_key": KEY}).status_code == 200

    replay.stop()

    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_the_server_url_is_unknown_until_it_starts() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = EiaReplayServer(hourly_dataset(1)).base_url


def test_samples_dir_default_is_the_packaged_copy() -> None:
    assert Path(__file__).resolve().parents[2] / "tasks" / "standin" / "samples" == SAMPLES_DIR
