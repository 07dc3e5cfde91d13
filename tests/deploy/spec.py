"""What the deployments must be: the issue's table, independent of prefect.yaml, and which flows exist yet.

The seven flows land from different issues. Until all have, the deploy tests deploy and check the
ones whose module defines the flow function; `REQUIRED_FLOWS` names those that must be there.
Tighten it to `ALL_FLOWS` once bulk, cost and monitoring have landed: a missing flow then fails.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Final

import yaml

REPO: Final = Path(__file__).resolve().parents[2]
PREFECT_YAML: Final = REPO / "prefect.yaml"
TEMPLATE: Final = REPO / "infra" / "work-pool" / "base-job-template.json"

# deployment (flow name) -> (entrypoint, cron), UTC: the runbook's schedules.
SCHEDULES: Final[dict[str, tuple[str, str]]] = {
    "ingest_eia_series_timescale": ("flows/series.py:ingest_eia_series_timescale", "0 2 * * *"),
    "ingest_eia_bulk": ("flows/bulk.py:ingest_eia_bulk", "0 3 1 * *"),
    "eia_data_monitoring": ("flows/monitoring.py:eia_data_monitoring", "*/30 * * * *"),
    "eia_cost_monitoring": ("flows/cost.py:eia_cost_monitoring", "0 */6 * * *"),
    "eia_data_monitoring_daily": ("flows/monitoring.py:eia_data_monitoring_daily", "0 9 * * *"),
    "eia_staleness_monitor": ("flows/monitoring.py:eia_staleness_monitor", "*/15 * * * *"),
    "eia_quality_monitor": ("flows/monitoring.py:eia_quality_monitor", "0 * * * *"),
}
ALL_FLOWS: Final = frozenset(SCHEDULES)
INGESTION: Final = frozenset({"ingest_eia_series_timescale", "ingest_eia_bulk"})

# The single switch: set to ALL_FLOWS when every flow module has landed.
REQUIRED_FLOWS: Final[frozenset[str]] = ALL_FLOWS

DEPLOYMENT_NAME: Final = "prod"
# The bulk fan-out's child deployment (README, "Scale out"): the bulk flow, one dataset per run.
CHILD_DEPLOYMENT_NAME: Final = "dataset"
PRODUCTION_POOL: Final = "eia-kubernetes"
# Runbook resource table, "EIA Worker" row.
RESOURCES: Final = {"cpu_request": "250m", "cpu_limit": "1000m", "memory_request": "512Mi", "memory_limit": "2Gi"}


def defines_flow(entrypoint: str) -> bool:
    """True when the entrypoint's file exists and defines the function at top level (no import)."""
    path, _, function = entrypoint.partition(":")
    source = REPO / path
    if not source.is_file():
        return False
    tree = ast.parse(source.read_text(encoding="utf-8"))
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function for node in tree.body)


def available_flows() -> frozenset[str]:
    return frozenset(name for name, (entrypoint, _) in SCHEDULES.items() if defines_flow(entrypoint))


def prefect_yaml() -> dict[str, Any]:
    loaded = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def flow_of(deployment: dict[str, Any]) -> str:
    return str(deployment["entrypoint"]).rpartition(":")[2]


def override_for_tests(pool: str) -> dict[str, Any]:
    """prefect.yaml as a test deploys it: the same deployments on a local `process` pool, with the
    pull step pointing at this checkout instead of the image's /opt/eia-pipeline. Nothing else changes."""
    config = prefect_yaml()
    for deployment in config["deployments"]:
        deployment["work_pool"] = {**deployment["work_pool"], "name": pool}
    config["pull"] = [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
    return config


def runbook_deployments(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The seven runbook deployments (named `prod`), without the bulk fan-out's child deployment."""
    return [d for d in config["deployments"] if d["name"] == DEPLOYMENT_NAME]
