"""`eia init --work-pool`: the Kubernetes work pool eia-kubernetes, created from the reviewed template
and kept equal to it, on a real Prefect server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.cli.workpool import WORK_POOL, ensure_work_pool
from flows.settings import SettingsError
from tests.deploy.prefect_server import LocalPrefect, run_cli
from tests.deploy.spec import REPO, TEMPLATE


async def test_eia_init_work_pool_creates_the_kubernetes_pool_from_the_template(
    local_prefect: LocalPrefect, pg_dsn: str, tmp_path: Path
) -> None:
    env = local_prefect.env(EIA_DATABASE_URL=pg_dsn, EIA_DATA_DIR=str(tmp_path))
    first = run_cli(["eia", "init", "--work-pool"], env, cwd=REPO)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "work pool eia-kubernetes" in first.stdout and "created" in first.stdout

    async with PrefectClient(local_prefect.api_url) as client:
        pool = await client.read_work_pool(WORK_POOL)
    assert pool.type == "kubernetes"
    assert pool.base_job_template == json.loads(TEMPLATE.read_text(encoding="utf-8"))
    with temporary_settings({PREFECT_API_URL: local_prefect.api_url}):  # what a rerun of `eia init` does
        assert ensure_work_pool(WORK_POOL, TEMPLATE) == "unchanged"


def test_ensure_work_pool_updates_a_drifted_template_and_refuses_a_bad_one(
    local_prefect: LocalPrefect, tmp_path: Path
) -> None:
    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    template["variables"]["properties"]["namespace"]["default"] = "somewhere-else"
    drifted = tmp_path / "drifted.json"
    drifted.write_text(json.dumps(template))
    with temporary_settings({PREFECT_API_URL: local_prefect.api_url}):
        assert ensure_work_pool("eia-drift-test", TEMPLATE) == "created"
        assert ensure_work_pool("eia-drift-test", drifted) == "updated"
        assert ensure_work_pool("eia-drift-test", TEMPLATE) == "updated"
        assert ensure_work_pool("eia-drift-test", TEMPLATE) == "unchanged"
        (tmp_path / "broken.json").write_text('{"variables": {}}')
        with pytest.raises(SettingsError, match="job_configuration"):
            ensure_work_pool("eia-drift-test", tmp_path / "broken.json")
        with pytest.raises(SettingsError, match="EIA_WORK_POOL_TEMPLATE"):
            ensure_work_pool("eia-drift-test", tmp_path / "missing.json")
