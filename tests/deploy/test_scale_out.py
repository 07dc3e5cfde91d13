"""Scale out on the work pool, against a real Prefect server, process workers and the EIA stand-in.

Bulk: a deployment run with two datasets starts one child flow run per dataset, which load side by
side in two worker processes; `eia_bulk_datasets` = 1 makes them take turns; a child killed mid-load
is the only dataset a retried parent runs again, and it resumes from its checkpoint.
Series: two runs on two workers at once share one request budget (slots, burst guard, ledger), load
every row once, send together at the quota spread rate, and a 429 seen by one slows the other.

One module-scoped pool (the session's server and deployments, three process workers with one run
each) serves every test: a parent bulk run needs a worker of its own besides its two children.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import signal
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from prefect.artifacts import Artifact
from prefect.blocks.system import Secret
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Scheduled
from psycopg.rows import dict_row
from pydantic import SecretStr

from blocks import (
    API_KEY_BLOCK,
    COST_POLICY_BLOCK,
    DATABASE_BLOCK,
    ENDPOINTS_BLOCK,
    KAFKA_BLOCK,
    EiaCostPolicy,
    EiaDatabase,
    EiaEndpoints,
    EiaKafka,
)
from flows.cli.setup import ensure_limits
from tasks.bulk.fanout import ARTIFACT_KEY, DATASET_TAG, PARENT_TAG
from tasks.quota.budget import CostPolicy
from tasks.standin.data import default_demo_dataset
from tasks.standin.server import EiaReplayServer
from tests.bulk.synthetic import archive_bytes, manifest, synthetic_archive_lines
from tests.deploy import rate_workers
from tests.deploy.conftest import TEST_POOL, Deployed
from tests.deploy.prefect_server import BIN, stop
from tests.deploy.spec import DEPLOYMENT_NAME
from tests.support.services import reset_database

pytestmark = pytest.mark.slow

API_KEY = "SCALEKEY-5b7d9f1a3c5e7a9b1d3f5a7c9e1b3d5f"
BULK, SERIES = "ingest_eia_bulk", "ingest_eia_series_timescale"
STAMP = "2024-08-23T15:23:15-04:00"
WORKERS = 3
SECOND_SERIES = "catalog-b"  # a second series deployment: "two catalogs run as two deployments"
ENDPOINTS_B = "eia-endpoints-b"
# Two catalogs, one per series deployment, fetched at once (each run's entries concurrently too).
CATALOG_A = ["electricity-retail-price", "henry-hub-spot-daily", "coal-market-sales-price-annual"]
CATALOG_B = [
    "steo-world-petroleum-consumption",
    "total-energy-consumption-monthly",
    "ny-harbor-conventional-gasoline-weekly",
]


@dataclass
class Pool:
    api_url: str
    client: PrefectClient
    dsn: str
    eia: EiaReplayServer
    work_dir: Path

    def serve(self, archives: dict[str, int]) -> dict[str, int]:
        """The stand-in's bulk site lists exactly these datasets ({code: observations}); returns them."""
        dataset = self.eia.dataset
        dataset.bulk_manifest = manifest(dict.fromkeys(archives, STAMP))
        dataset.bulk_files = {
            f"{code}.zip": archive_bytes(code, synthetic_archive_lines(n, dataset=code, seed=len(code)))
            for code, n in archives.items()
        }
        return archives

    async def start(self, deployment: str, **parameters: Any) -> UUID:
        found = await self.client.read_deployment_by_name(deployment)
        return (await self.client.create_flow_run_from_deployment(found.id, parameters=parameters)).id

    async def wait(self, run_id: UUID, timeout_s: float = 240.0) -> FlowRun:
        deadline = time.monotonic() + timeout_s
        while True:
            run = await self.client.read_flow_run(run_id)
            if run.state is not None and run.state.is_final():
                return run
            assert time.monotonic() < deadline, f"flow run {run.name} still {run.state} after {timeout_s:.0f} s"
            await asyncio.sleep(0.5)

    async def children(self, parent: UUID) -> list[FlowRun]:
        runs = await self.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"{PARENT_TAG}{parent}"]))
        )
        return sorted(runs, key=lambda r: r.created or datetime.min.replace(tzinfo=UTC))

    def run_log(self, run_id: UUID | str) -> dict[str, Any]:
        with psycopg.connect(self.dsn, row_factory=dict_row) as conn:
            row = conn.execute("SELECT * FROM eia_run_log WHERE run_id = %s", (str(run_id),)).fetchone()
        assert row is not None, f"no run-log row for {run_id}"
        return row

    def scalar(self, sql: str, *params: Any) -> Any:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(sql, params).fetchone()
        assert row is not None
        return row[0]


WORKER = [str(BIN / "prefect"), "worker", "start", "--pool", TEST_POOL, "--type", "process", "--limit", "1"]


def _workers(env: dict[str, str], logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    for i in range(WORKERS):
        with (logs / f"worker-{i}.log").open("wb") as log:
            yield subprocess.Popen(
                [*WORKER, "--name", f"scale-out-{i}"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )


@pytest.fixture(scope="module")
async def pool(deployed: Deployed, pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pool]:
    missing = {BULK, SERIES} - deployed.flows
    if missing:
        pytest.skip(f"flows not defined yet: {sorted(missing)}")
    reset_database(pg_dsn)
    server = deployed.server
    tmp = tmp_path_factory.mktemp("scale-out")
    with (
        EiaReplayServer(default_demo_dataset()) as eia,
        temporary_settings({PREFECT_API_URL: server.api_url}),
    ):
        await Secret(value=SecretStr(API_KEY)).save(API_KEY_BLOCK, overwrite=True)
        await page_sizes(eia, 200, 100)  # a few pages per entry: this machine runs page tasks slowly
        await EiaDatabase(dsn=SecretStr(pg_dsn)).save(DATABASE_BLOCK, overwrite=True)
        await EiaKafka().save(KAFKA_BLOCK, overwrite=True)
        await EiaCostPolicy().save(COST_POLICY_BLOCK, overwrite=True)
        await ensure_limits(datasets=3)  # the runbook's limits: 3 slots, 2 requests/s, burst 2
        async with PrefectClient(server.api_url) as client:
            prod = await client.read_deployment_by_name(f"{SERIES}/{DEPLOYMENT_NAME}")
            await client.create_deployment(
                flow_id=prod.flow_id,
                name=SECOND_SERIES,
                work_pool_name=TEST_POOL,
                entrypoint=prod.entrypoint,
                path=prod.path,
                pull_steps=prod.pull_steps,
                job_variables=prod.job_variables,
                parameters={"endpoints_block": ENDPOINTS_B},
                tags=["eia"],
            )
            env = server.env(EIA_DATA_DIR=str(tmp / "data"), PREFECT_WORKER_QUERY_SECONDS="1")
            env.pop("EIA_ENVIRONMENT", None)
            workers = list(_workers(env, tmp))
            try:
                yield Pool(server.api_url, client, pg_dsn, eia, tmp / "data" / "bulk")
            finally:
                for worker in workers:
                    stop(worker)
                await client.delete_deployment((await client.read_deployment_by_name(f"{SERIES}/{SECOND_SERIES}")).id)


@pytest.fixture(autouse=True)
def prefect_api(deployed: Deployed) -> Iterator[None]:
    """Prefect calls made by the tests themselves (limits, blocks, artifacts) go to the deployed server."""
    with temporary_settings({PREFECT_API_URL: deployed.server.api_url}):
        yield


async def page_sizes(eia: EiaReplayServer, a: int, b: int) -> None:
    """The endpoints blocks of series deployments A and B, pointing at the stand-in with these page sizes:
    the number of requests each run sends (the rate is the client's default 2/s, as in production)."""
    for name, size in ((ENDPOINTS_BLOCK, a), (ENDPOINTS_B, b)):
        block = EiaEndpoints(api_url=eia.api_url, bulk_url=eia.bulk_url, retry_base_delay_s=0.05, page_size=size)
        await block.save(name, overwrite=True)


def dataset_of(run: FlowRun) -> str:
    [code] = [t.removeprefix(DATASET_TAG) for t in run.tags if t.startswith(DATASET_TAG)]
    return code


def overlap(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Seconds during which both runs (run-log rows) were running."""
    return float((min(a["ended_at"], b["ended_at"]) - max(a["started_at"], b["started_at"])).total_seconds())


# -- bulk fan-out ----------------------------------------------------------------------------------


async def test_a_bulk_run_for_two_datasets_loads_them_in_two_child_runs_side_by_side(pool: Pool) -> None:
    sizes = pool.serve({"ELEC": 60_000, "PET": 60_000})
    parent = await pool.start(f"{BULK}/{DEPLOYMENT_NAME}", datasets=["ELEC", "PET"], batch_size=4_000)

    run = await pool.wait(parent)

    assert run.state is not None and run.state.is_completed(), run.state
    children = await pool.children(parent)
    assert sorted(dataset_of(c) for c in children) == ["ELEC", "PET"]
    assert all(c.state is not None and c.state.is_completed() for c in children)
    assert {c.parent_task_run_id is not None for c in children} == {True}  # linked as subflows in the UI
    rows = [pool.run_log(c.id) for c in children]
    assert len({(r["host"], r["pid"]) for r in rows}) == 2  # two processes
    assert overlap(rows[0], rows[1]) > 0, rows  # at the same time
    # Every row loaded: the table holds each archive's observations, and the parent adds its children up.
    for r, code in zip(rows, [dataset_of(c) for c in children], strict=True):
        expected = ("completed", sizes[code], sizes[code], 0)
        assert (r["status"], r["received"], r["inserted"], r["quarantined"]) == expected
    assert pool.scalar("SELECT count(*) FROM eia_series_timeseries") == sum(sizes.values())
    assert pool.run_log(parent)["inserted"] == sum(sizes.values())
    artifact = await Artifact.aget(ARTIFACT_KEY)
    assert artifact is not None
    for child in children:
        assert str(child.id) in str(artifact.data)
    assert "| ELEC |" in str(artifact.data) and "| PET |" in str(artifact.data)


async def test_with_one_dataset_slot_the_children_load_one_after_the_other(pool: Pool) -> None:
    await ensure_limits(datasets=1)
    try:
        pool.serve({"NG": 30_000, "COAL": 30_000})
        parent = await pool.start(f"{BULK}/{DEPLOYMENT_NAME}", datasets=["NG", "COAL"], batch_size=4_000)
        run = await pool.wait(parent)
    finally:
        await ensure_limits(datasets=3)

    assert run.state is not None and run.state.is_completed(), run.state
    first, second = sorted((pool.run_log(c.id) for c in await pool.children(parent)), key=lambda r: r["started_at"])
    assert first["pid"] != second["pid"]
    assert second["started_at"] >= first["ended_at"], (first, second)


async def test_a_child_killed_mid_load_is_the_only_dataset_a_parent_retry_runs_again_from_its_checkpoint(
    pool: Pool,
) -> None:
    sizes = pool.serve({"TOTAL": 20_000, "EBA": 120_000})
    parent = await pool.start(f"{BULK}/{DEPLOYMENT_NAME}", datasets=["TOTAL", "EBA"], batch_size=2_000)
    # Kill EBA's process once it has committed batches (its run-log row says which process it is).
    deadline = time.monotonic() + 180
    while True:
        committed = pool.scalar("SELECT coalesce(max(batches), 0) >= 3 FROM eia_bulk_checkpoints WHERE dataset = 'EBA'")
        eba = [c for c in await pool.children(parent) if dataset_of(c) == "EBA"]
        if committed and eba:
            break
        assert time.monotonic() < deadline, "EBA never committed a batch"
        await asyncio.sleep(0.2)
    killed = pool.run_log(eba[0].id)
    os.kill(killed["pid"], signal.SIGKILL)

    failed = await pool.wait(parent)
    assert failed.state is not None and failed.state.is_failed(), failed.state
    assert "EBA: child run Crashed" in str(failed.state.message) and "TOTAL" not in str(failed.state.message)

    await pool.client.set_flow_run_state(parent, Scheduled(), force=True)  # the UI's "Retry"
    retried = await pool.wait(parent)

    assert retried.state is not None and retried.state.is_completed(), retried.state
    children = await pool.children(parent)
    by_dataset = {code: [c for c in children if dataset_of(c) == code] for code in sizes}
    assert len(by_dataset["TOTAL"]) == 1  # finished the first time: not run again
    assert [c.state.type.value for c in by_dataset["EBA"] if c.state] == ["CRASHED", "COMPLETED"]
    resumed = pool.run_log(by_dataset["EBA"][1].id)
    # The second EBA run loaded only what the killed one had not committed, and nothing twice.
    assert 0 < resumed["received"] < sizes["EBA"]
    assert pool.scalar("SELECT sum(received) FROM eia_batch_log WHERE dataset = 'EBA'") == sizes["EBA"]
    assert pool.scalar("SELECT count(*) FROM eia_series_timeseries WHERE dataset = 'EBA'") == sizes["EBA"]
    artifact = await Artifact.aget(ARTIFACT_KEY)
    assert artifact is not None and "finished by an earlier attempt" in str(artifact.data)


# -- series side by side ---------------------------------------------------------------------------


def starts_per_window(stamps: list[float], window_s: float = 1.0) -> int:
    """The most request starts in any `window_s` seconds."""
    return max((sum(1 for t in stamps[i:] if t < s + window_s) for i, s in enumerate(stamps)), default=0)


def rate(stamps: list[float], start: float, end: float) -> float:
    inside = [t for t in stamps if start <= t < end]
    return len(inside) / (end - start)


async def test_two_series_runs_on_two_workers_at_once_share_the_slots_burst_guard_and_ledger_and_load_every_row_once(
    pool: Pool,
) -> None:
    reset_database(pool.dsn)
    pool.eia.stats.reset()
    pool.eia.stats.api_arrivals.clear()
    pool.eia.faults.latency_s = 0.3  # answers overlap: the slot pool has something to hold back
    try:
        ids = (
            await pool.start(f"{SERIES}/{DEPLOYMENT_NAME}", entries=CATALOG_A),
            await pool.start(f"{SERIES}/{SECOND_SERIES}", entries=CATALOG_B),
        )
        a, b = [await pool.wait(i, timeout_s=480) for i in ids]
    finally:
        pool.eia.faults.latency_s = 0.0

    assert a.state is not None and a.state.is_completed(), a.state
    assert b.state is not None and b.state.is_completed(), b.state
    ra, rb = pool.run_log(a.id), pool.run_log(b.id)
    assert ra["pid"] != rb["pid"] and overlap(ra, rb) > 0  # two processes, at the same time
    stamps = sorted(t for t, _ in pool.eia.stats.api_arrivals)
    assert pool.eia.stats.max_in_flight <= 3  # api_eia: 3 slots over both runs
    assert starts_per_window(stamps) <= 4  # api_eia_rate: burst 2, 2/s over both runs
    assert pool.scalar("SELECT sum(requests) FROM eia_usage_ledger") == pool.eia.stats.api_requests
    # Every row once: each run inserted its own catalog's rows, nothing twice, the table holds the sum.
    assert ra["updated"] == rb["updated"] == 0 and ra["inserted"] > 0 and rb["inserted"] > 0
    assert ra["received"] == ra["inserted"] and rb["received"] == rb["inserted"]
    assert pool.scalar("SELECT count(*) FROM eia_series_timeseries") == ra["inserted"] + rb["inserted"]


def send_side_by_side(
    pool: Pool, policy: CostPolicy, seconds: float, *, rate: float = 2.0, during: Any = None
) -> dict[str, list[float]]:
    """Two worker processes send for `seconds` through the shared budget; their request starts by worker."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results: Any = context.Queue()
    job = rate_workers.Job(pool.api_url, pool.eia.api_url, API_KEY, pool.dsn, "aurum-prod", policy, seconds, rate)
    pool.eia.stats.api_arrivals.clear()
    procs = [context.Process(target=rate_workers.send_for, args=(job, w, start, results)) for w in ("a", "b")]
    for proc in procs:
        proc.start()
    if during is not None:
        during()
    sent = dict(results.get(timeout=180) for _ in procs)
    for proc in procs:
        proc.join(30)
    arrivals = list(pool.eia.stats.api_arrivals)
    by_worker = {w: [t for t, p in arrivals if p == rate_workers.path_of(w)] for w in ("a", "b")}
    assert {w: len(v) for w, v in by_worker.items()} == sent  # every request sent reached the stand-in
    return by_worker


def both_started(pool: Pool) -> float:
    """Waits until both workers have sent; returns the moment (stand-in clock, time.time())."""
    deadline = time.monotonic() + 120
    paths = {rate_workers.path_of(w) for w in ("a", "b")}
    while not paths <= {p for _, p in pool.eia.stats.api_arrivals}:
        assert time.monotonic() < deadline, "the two workers never both sent"
        time.sleep(0.05)
    return time.time()


def median_gap(stamps: list[float], start: float, end: float) -> float:
    inside = [t for t in stamps if start <= t < end]
    return statistics.median(b - a for a, b in itertools.pairwise(inside))


def test_a_429_seen_by_one_worker_lowers_the_other_workers_rate_within_seconds(pool: Pool) -> None:
    reset_database(pool.dsn)
    throttled: list[float] = []

    def throttle_once() -> None:
        both_started(pool)
        time.sleep(10)  # a baseline: each at its share, 1/s over two workers: one request every 2 s
        pool.eia.faults.retry_after_s = 0
        pool.eia.faults.burst_429 = 1  # the next request, whichever worker sends it
        while pool.eia.stats.statuses[429] == 0:
            time.sleep(0.01)
        throttled.append(time.time())

    try:
        by_worker = send_side_by_side(pool, CostPolicy(), seconds=26, rate=1.0, during=throttle_once)
    finally:
        pool.eia.faults.burst_429, pool.eia.faults.retry_after_s = 0, 1

    t = throttled[0]
    gaps = {w: (median_gap(s, t - 10, t), median_gap(s, t + 0.5, t + 12)) for w, s in by_worker.items()}
    # Both slowed down, the worker EIA never throttled too: the factor every worker reads was halved
    # (then recovering by 0.1 every 5 s), so the gaps between its requests grew by about 1.5x.
    for before, after in gaps.values():
        assert 1.5 < before < 2.6, gaps
        assert after > 1.3 * before, gaps
    with psycopg.connect(pool.dsn) as conn:
        row = conn.execute("SELECT factor, throttle_events FROM eia_throttle_state").fetchone()
    assert row == (0.5, 1)


def test_past_the_warning_threshold_two_workers_together_send_at_the_spread_rate_not_twice_it(pool: Pool) -> None:
    reset_database(pool.dsn)
    # The day's usage past 50 % of a quota whose remainder, spread over the rest of the UTC day, is 1/s.
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    seconds_left = ((now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0) - now).total_seconds()
    remaining = int(seconds_left)
    policy = CostPolicy(daily_request_limit=2 * remaining, warning_percent=Decimal(50), eia_guidance_override=True)
    with psycopg.connect(pool.dsn, autocommit=True) as conn:  # counted today, not against this hour's quota
        conn.execute(
            """INSERT INTO eia_usage_ledger (tenant_id, hour_bucket, requests, hour_quota_offset)
               VALUES ('aurum-prod', %s, %s, %s)""",
            (hour, remaining, remaining),
        )

    by_worker = send_side_by_side(pool, policy, seconds=20)

    # After each one's first reservation set its share (the first seconds), together they send ~1/s.
    start = max(s[0] for s in by_worker.values()) + 3
    end = min(s[-1] for s in by_worker.values())
    assert end - start >= 10, (start, end)
    together = rate(sorted(t for s in by_worker.values() for t in s), start, end)
    assert 0.6 < together < 1.3, together  # 2/s would be each worker spending the whole spread
