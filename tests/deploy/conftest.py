"""Fixtures for the deployment tests: one local Prefect server, a process pool, the deployments."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from tests.deploy.prefect_server import LocalPrefect, local_prefect_server, run_cli
from tests.deploy.spec import ALL_FLOWS, DEPLOYMENT_NAME, REPO, available_flows, override_for_tests

TEST_POOL = "eia-test-process"


@pytest.fixture(scope="session")
def local_prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefect]:
    with local_prefect_server(tmp_path_factory.mktemp("prefect-home")) as server:
        yield server


@dataclass(frozen=True)
class Deployed:
    server: LocalPrefect
    flows: frozenset[str]
    command: list[str]
    output: str


@pytest.fixture(scope="session")
def deployed(local_prefect: LocalPrefect, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    """prefect.yaml deployed to the local server, on a `process` pool standing in for eia-kubernetes."""
    env = local_prefect.env()
    created = run_cli(["prefect", "work-pool", "create", TEST_POOL, "--type", "process"], env)
    assert created.returncode == 0, created.stdout + created.stderr
    override = tmp_path_factory.mktemp("deploy") / "prefect.yaml"
    override.write_text(yaml.safe_dump(override_for_tests(TEST_POOL), sort_keys=False))
    flows = available_flows()
    if flows == ALL_FLOWS:
        selection = ["--all"]
    else:  # deploy what exists by name; `flow/deployment` picks one entry among the same-named ones
        selection = [arg for flow in sorted(flows) for arg in ("--name", f"{flow}/{DEPLOYMENT_NAME}")]
    command = ["prefect", "--no-prompt", "deploy", "--prefect-file", str(override), *selection]
    result = run_cli(command, env, cwd=REPO, timeout_s=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return Deployed(local_prefect, flows, command, result.stdout + result.stderr)
