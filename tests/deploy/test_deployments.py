"""prefect.yaml deployed to a real Prefect server: the runbook's schedules, a run through a process
worker against the EIA stand-in, and the emergency pause/resume."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import BlockDocumentUpdate
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import DeploymentResponse
from prefect.settings import PREFECT_API_URL, temporary_settings
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
from tasks.bulk.fanout import CHILD_DEPLOYMENT
from tasks.standin.data import default_demo_dataset
from tasks.standin.server import EiaReplayServer
from tests.deploy.conftest import TEST_POOL, Deployed
from tests.deploy.prefect_server import LocalPrefect, run_cli
from tests.deploy.spec import (
    ALL_FLOWS,
    CHILD_DEPLOYMENT_NAME,
    DEPLOYMENT_NAME,
    INGESTION,
    PRODUCTION_POOL,
    REQUIRED_FLOWS,
    RESOURCES,
    SCHEDULES,
    available_flows,
    flow_of,
    prefect_yaml,
    runbook_deployments,
)
from tests.support.services import reset_database

API_KEY = "DEPLOYKEY-0c4f2a9e7b1d3f5a8c6e0b2d4f6a8c1e"
SERIES = "ingest_eia_series_timescale"


async def eia_deployments(api_url: str) -> dict[str, list[DeploymentResponse]]:
    """Flow name -> its deployments on the server."""
    async with PrefectClient(api_url) as client:
        flows = {
            f.id: f.name
            for f in await client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=list(ALL_FLOWS))))
        }
        found: dict[str, list[DeploymentResponse]] = {}
        for d in await client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=list(ALL_FLOWS)))):
            found.setdefault(flows[d.flow_id], []).append(d)
    return found


# --- the file itself --------------------------------------------------------------------------


def test_prefect_yaml_declares_the_seven_runbook_deployments_on_the_kubernetes_pool() -> None:
    config = prefect_yaml()
    deployments = {flow_of(d): d for d in runbook_deployments(config)}
    assert len(runbook_deployments(config)) == 7 and deployments.keys() == ALL_FLOWS
    for flow, (entrypoint, cron) in SCHEDULES.items():
        d = deployments[flow]
        assert d["name"] == DEPLOYMENT_NAME
        assert d["entrypoint"] == entrypoint
        assert d["schedules"] == [{"cron": cron, "timezone": "UTC", "active": True}], flow
        assert d["work_pool"]["name"] == PRODUCTION_POOL
        variables = d["work_pool"]["job_variables"]
        assert {k: variables[k] for k in RESOURCES} == RESOURCES
        assert variables["namespace"] == "aurum-prod"
        assert isinstance(variables["finished_job_ttl"], int) and variables["finished_job_ttl"] > 0
        assert variables["env_from"] == [{"secretRef": {"name": "eia-secrets"}}]
        assert "eia" in d["tags"]
        assert isinstance(d["parameters"], dict)
        if flow in INGESTION:
            assert d["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
        else:
            assert "concurrency_limit" not in d
    assert config["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/eia-pipeline"}}]


def test_the_bulk_child_deployment_runs_the_bulk_flow_unscheduled_without_a_deployment_limit() -> None:
    config = prefect_yaml()
    [child] = [d for d in config["deployments"] if d["name"] == CHILD_DEPLOYMENT_NAME]
    [parent] = [d for d in runbook_deployments(config) if flow_of(d) == "ingest_eia_bulk"]
    assert child["entrypoint"] == parent["entrypoint"] == "flows/bulk.py:ingest_eia_bulk"
    assert f"{flow_of(child)}/{child['name']}" == CHILD_DEPLOYMENT
    # Children of a `prod` run behind `prod`'s limit of 1 would wait for their own parent forever.
    assert "schedules" not in child and "concurrency_limit" not in child
    assert child["parameters"] == {"fan_out": False}
    assert child["work_pool"] == parent["work_pool"]  # same pool, image and resources


def test_the_image_tag_is_the_project_version() -> None:
    images = {d["work_pool"]["job_variables"]["image"] for d in prefect_yaml()["deployments"]}
    assert images == {f"ghcr.io/aurum/eia-pipeline:{version('eia-pipeline')}"}


def test_no_secret_value_is_written_in_prefect_yaml() -> None:
    for d in prefect_yaml()["deployments"]:
        env = d["work_pool"]["job_variables"]["env"]
        assert not any(re.search(r"KEY|TOKEN|PASSWORD|SECRET|DSN|DATABASE_URL", k) for k in env), env


def test_every_flow_in_prefect_yaml_is_defined_or_not_yet_required() -> None:
    missing = ALL_FLOWS - available_flows()
    assert not missing & REQUIRED_FLOWS, f"required flows not defined: {sorted(missing & REQUIRED_FLOWS)}"
    if missing:
        pytest.skip(
            f"not landed yet: {sorted(missing)}; the deploy test covers the other {7 - len(missing)}"
            " (tighten REQUIRED_FLOWS in tests/deploy/spec.py once all seven have landed)"
        )


# --- deployed ---------------------------------------------------------------------------------


async def test_deploy_creates_each_deployment_with_exactly_its_runbook_schedule(deployed: Deployed) -> None:
    missing = REQUIRED_FLOWS - deployed.flows
    assert not missing, f"required flows not defined yet: {sorted(missing)}"
    found = await eia_deployments(deployed.server.api_url)
    assert found.keys() == deployed.flows, deployed.output
    for flow in deployed.flows:
        [d] = [d for d in found[flow] if d.name == DEPLOYMENT_NAME]
        cron = SCHEDULES[flow][1]
        assert d.name == DEPLOYMENT_NAME
        assert d.entrypoint == SCHEDULES[flow][0]
        assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in d.schedules] == [  # type: ignore[union-attr]
            (cron, "UTC", True)
        ], flow
        assert d.work_pool_name == TEST_POOL
        assert {k: (d.job_variables or {})[k] for k in RESOURCES} == RESOURCES
        assert d.pull_steps and "prefect.deployments.steps.set_working_directory" in d.pull_steps[0]
        if flow in INGESTION:
            assert d.global_concurrency_limit is not None and d.global_concurrency_limit.limit == 1, flow
            assert d.concurrency_options is not None
            assert d.concurrency_options.collision_strategy == "ENQUEUE"
        else:
            assert d.global_concurrency_limit is None, flow


@pytest.mark.slow
async def test_a_deployment_run_picked_up_by_a_process_worker_loads_rows(
    deployed: Deployed, db: str, tmp_path: Any
) -> None:
    server = deployed.server
    with EiaReplayServer(default_demo_dataset()) as eia:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            await Secret(value=SecretStr(API_KEY)).save(API_KEY_BLOCK, overwrite=True)
            await EiaEndpoints(
                api_url=eia.api_url, bulk_url=eia.bulk_url, requests_per_second=200.0, retry_base_delay_s=0.05
            ).save(ENDPOINTS_BLOCK, overwrite=True)
            await EiaDatabase(dsn=SecretStr(db)).save(DATABASE_BLOCK, overwrite=True)
            await EiaKafka().save(KAFKA_BLOCK, overwrite=True)
            await EiaCostPolicy().save(COST_POLICY_BLOCK, overwrite=True)  # a deployment run has no block defaults
            await ensure_limits(slots=3, rate=1000.0, burst=50)
        env = server.env(EIA_DATA_DIR=str(tmp_path / "data"))

        started = run_cli(
            [
                "prefect",
                "deployment",
                "run",
                f"{SERIES}/{DEPLOYMENT_NAME}",
                "--param",
                'entries=["electricity-retail-price"]',
            ],
            env,
        )
        assert started.returncode == 0, started.stdout + started.stderr
        match = re.search(r"UUID:\s*([0-9a-f-]{36})", started.stdout)
        assert match, started.stdout
        worker = run_cli(
            ["prefect", "worker", "start", "--pool", TEST_POOL, "--type", "process", "--run-once", "--limit", "1"],
            env,
            timeout_s=150,
        )
        assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]

    async with PrefectClient(server.api_url) as client:
        run: FlowRun = await client.read_flow_run(UUID(match.group(1)))
    assert run.state is not None and run.state.is_completed(), (run.state, worker.stdout[-3000:], worker.stderr[-3000:])
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT count(*) FROM eia_series_timeseries").fetchone()
        log = conn.execute(
            "SELECT status, received, inserted, quarantined FROM eia_run_log WHERE run_id = %s", (str(run.id),)
        ).fetchone()
    assert rows is not None and rows[0] > 0
    assert log == ("completed", rows[0], rows[0], 0)
    assert API_KEY not in worker.stdout + worker.stderr


async def test_eia_deployments_pause_leaves_every_eia_deployment_paused_and_resume_restores_them(
    deployed: Deployed,
) -> None:
    env = deployed.server.env()
    try:
        paused = run_cli(["eia", "deployments", "pause"], env)
        assert paused.returncode == 0, paused.stdout + paused.stderr
        found = await eia_deployments(deployed.server.api_url)
        assert found.keys() == deployed.flows
        assert all(d.paused for ds in found.values() for d in ds)
        total = len(deployed.flows) + ("ingest_eia_bulk" in deployed.flows)  # + the bulk child deployment
        assert f"{total} of {total} EIA deployments paused" in paused.stdout
        for flow in deployed.flows:
            assert f"paused: {flow}/{DEPLOYMENT_NAME}" in paused.stdout

        listed = run_cli(["eia", "deployments", "list"], env)
        assert listed.returncode == 0 and listed.stdout.count("paused") == total, listed.stdout
    finally:
        resumed = run_cli(["eia", "deployments", "resume"], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    found = await eia_deployments(deployed.server.api_url)
    assert not any(d.paused for ds in found.values() for d in ds)
    # Resuming keeps each schedule exactly as deployed.
    for flow, ds in found.items():
        [d] = [d for d in ds if d.name == DEPLOYMENT_NAME]
        assert [(s.schedule.cron, s.active) for s in d.schedules] == [(SCHEDULES[flow][1], True)]  # type: ignore[union-attr]


def test_eia_deployments_against_an_unreachable_api_says_so_in_one_line_and_exits_2(
    local_prefect: LocalPrefect,
) -> None:
    env = local_prefect.env(PREFECT_API_URL="http://127.0.0.1:9/api")
    result = run_cli(["eia", "deployments", "pause"], env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot reach the Prefect API at http://127.0.0.1:9/api" in result.stderr
    assert "Traceback" not in result.stderr


# --- no silent fallbacks in a deployment run ------------------------------------------------------

BULK, COST = "ingest_eia_bulk", "eia_cost_monitoring"
KAFKA_OFF_BLOCK = "eia-kafka-off"  # an eia-kafka block with an empty bootstrap: Kafka off on purpose
WRONG_DSN_BLOCK = "eia-database-wrong-dsn"
WRONG_DSN = "postgresql://nobody:wrong-pw-9c1e@127.0.0.1:9/not-the-target"


@dataclass(frozen=True)
class GuardedRuns:
    """Three deployment runs picked up by one process worker, its environment holding EIA_DATABASE_URL."""

    kafka_deleted: FlowRun
    database_invalid: FlowRun
    dsn_from_environment: FlowRun
    dsn_run_logs: list[tuple[int, str]]
    worker_output: str
    dsn: str


async def _flow_run(client: PrefectClient, flow: str, parameters: dict[str, Any]) -> UUID:
    deployment = await client.read_deployment_by_name(f"{flow}/{DEPLOYMENT_NAME}")
    return (await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)).id


@pytest.fixture(scope="module")
async def guarded_runs(
    deployed: Deployed, pg_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[GuardedRuns]:
    """Blocks: `eia-kafka` deleted, `eia-database` invalid (tenant_id "", retention_years -1), and one
    database block whose DSN points nowhere. Runs: bulk with the default kafka block (a), cost monitoring
    with the default database block (b), series on the wrong-DSN block (c). One worker takes all three,
    with EIA_DATABASE_URL set to the test database. The default blocks are restored afterwards."""
    missing = {BULK, COST, SERIES} - deployed.flows
    if missing:
        pytest.skip(f"flows not defined yet: {sorted(missing)}")
    reset_database(pg_dsn)
    server = deployed.server
    tmp: Path = tmp_path_factory.mktemp("guarded")
    with EiaReplayServer(default_demo_dataset()) as eia, temporary_settings({PREFECT_API_URL: server.api_url}):
        try:
            await Secret(value=SecretStr(API_KEY)).save(API_KEY_BLOCK, overwrite=True)
            await EiaEndpoints(
                api_url=eia.api_url, bulk_url=eia.bulk_url, requests_per_second=200.0, retry_base_delay_s=0.05
            ).save(ENDPOINTS_BLOCK, overwrite=True)
            await EiaCostPolicy().save(COST_POLICY_BLOCK, overwrite=True)
            await ensure_limits(slots=3, rate=1000.0, burst=50)
            await EiaKafka().save(KAFKA_OFF_BLOCK, overwrite=True)
            await EiaDatabase(dsn=SecretStr(WRONG_DSN)).save(WRONG_DSN_BLOCK, overwrite=True)
            await EiaKafka().save(KAFKA_BLOCK, overwrite=True)
            await EiaKafka.adelete(KAFKA_BLOCK)  # type: ignore[misc]
            await EiaDatabase(dsn=SecretStr(WRONG_DSN)).save(DATABASE_BLOCK, overwrite=True)
            async with PrefectClient(server.api_url) as client:
                document = await client.read_block_document_by_name(DATABASE_BLOCK, block_type_slug="eia-database")
                # Past the model's validation, as a hand edit through the API or UI would store it.
                invalid = BlockDocumentUpdate(data={"tenant_id": "", "retention_years": -1})
                await client.update_block_document(document.id, invalid)
                ids = (
                    await _flow_run(client, BULK, {"datasets": ["ELEC"], "database_block": WRONG_DSN_BLOCK}),
                    await _flow_run(client, COST, {}),
                    await _flow_run(
                        client,
                        SERIES,
                        {
                            "entries": ["electricity-retail-price"],
                            "database_block": WRONG_DSN_BLOCK,
                            "kafka_block": KAFKA_OFF_BLOCK,
                        },
                    ),
                )
            env = server.env(EIA_DATA_DIR=str(tmp / "data"), EIA_DATABASE_URL=pg_dsn)
            env.pop("EIA_ENVIRONMENT", None)  # the worker's own shell: production comes from the deployment
            worker = run_cli(
                ["prefect", "worker", "start", "--pool", TEST_POOL, "--type", "process", "--run-once", "--limit", "3"],
                env,
                timeout_s=240,
            )
            output = worker.stdout + worker.stderr
            assert worker.returncode == 0, output[-6000:]
            async with PrefectClient(server.api_url) as client:
                runs = [await client.read_flow_run(i) for i in ids]
                logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[ids[2]])))
            yield GuardedRuns(runs[0], runs[1], runs[2], [(log.level, log.message) for log in logs], output, pg_dsn)
        finally:
            await EiaDatabase(dsn=SecretStr(pg_dsn)).save(DATABASE_BLOCK, overwrite=True)
            await EiaKafka().save(KAFKA_BLOCK, overwrite=True)
            for cls, name in ((EiaKafka, KAFKA_OFF_BLOCK), (EiaDatabase, WRONG_DSN_BLOCK)):
                await cls.adelete(name)  # type: ignore[attr-defined]


def _failed_with(run: FlowRun) -> str:
    assert run.state is not None and run.state.is_failed(), run.state
    return str(run.state.message)


@pytest.mark.slow
def test_a_deployment_run_with_the_kafka_block_deleted_fails_naming_the_block(guarded_runs: GuardedRuns) -> None:
    message = _failed_with(guarded_runs.kafka_deleted)
    assert (
        "block 'eia-kafka' (EIA Kafka) does not exist, and production (a deployment run or EIA_ENVIRONMENT=prod) "
        "uses no defaults: create it with `eia init` with EIA_KAFKA_BOOTSTRAP and EIA_SCHEMA_REGISTRY_URL set"
    ) in message, message
    assert "Traceback" not in guarded_runs.worker_output  # one line: the flow logs the message, not a stack


@pytest.mark.slow
def test_a_deployment_run_with_an_invalid_database_block_fails_naming_the_fields(guarded_runs: GuardedRuns) -> None:
    message = _failed_with(guarded_runs.database_invalid)
    assert (
        "block 'eia-database' (EIA Database) is invalid: field 'tenant_id' (String should have at least 1 "
        "character), field 'retention_years' (Input should be greater than or equal to 0)"
    ) in message, message
    assert "wrong-pw" not in message + guarded_runs.worker_output


@pytest.mark.slow
def test_a_deployment_run_loads_into_eia_database_url_from_the_environment_over_the_blocks_dsn(
    guarded_runs: GuardedRuns,
) -> None:
    run = guarded_runs.dsn_from_environment
    assert run.state is not None and run.state.is_completed(), (run.state, guarded_runs.worker_output[-4000:])
    with psycopg.connect(guarded_runs.dsn) as conn:
        rows = conn.execute("SELECT count(*) FROM eia_series_timeseries").fetchone()
        log = conn.execute(
            "SELECT status, received, inserted FROM eia_run_log WHERE run_id = %s", (str(run.id),)
        ).fetchone()
    assert rows is not None and rows[0] > 0
    assert log == ("completed", rows[0], rows[0])
    # A deployment run is production: Kafka off on purpose (an empty bootstrap) is said at WARNING.
    assert (
        30,
        f"Kafka publishing is off: block {KAFKA_OFF_BLOCK!r} has an empty bootstrap_servers (EIA_KAFKA_BOOTSTRAP); "
        "no observations are published",
    ) in guarded_runs.dsn_run_logs
