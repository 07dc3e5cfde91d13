"""The Kubernetes work pool `eia-kubernetes`, created or updated from the repository's base job template.

`prefect deploy --all` refuses deployments whose work pool does not exist, and a pool created by hand
in the UI drifts from the reviewed template (namespace, resources, non-root pod). `eia init
--work-pool` makes the pool exactly `infra/work-pool/base-job-template.json`, idempotently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectNotFound

from flows.settings import SettingsError

WORK_POOL: Final = "eia-kubernetes"
WORK_POOL_TYPE: Final = "kubernetes"
TEMPLATE_SETTING: Final = "EIA_WORK_POOL_TEMPLATE"
TEMPLATE_RELATIVE: Final = Path("infra/work-pool/base-job-template.json")
DESCRIPTION: Final = "EIA pipeline flow runs as Kubernetes Jobs (infra/work-pool/base-job-template.json)."


def default_template_path() -> Path:
    """`EIA_WORK_POOL_TEMPLATE`, else the template in the current directory (the image's project
    directory, or a checkout), else the one beside this source tree."""
    configured = os.environ.get(TEMPLATE_SETTING)
    if configured:
        return Path(configured)
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = root / TEMPLATE_RELATIVE
        if candidate.is_file():
            return candidate
    return Path.cwd() / TEMPLATE_RELATIVE


def load_template(path: Path) -> dict[str, Any]:
    """The base job template, checked for the two sections Prefect requires."""
    try:
        template = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(
            f"work pool template not found at {path} (run from the repository root or set {TEMPLATE_SETTING})"
        ) from None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"work pool template {path} ({TEMPLATE_SETTING}) is not readable JSON: {exc}") from None
    if not isinstance(template, dict) or not {"job_configuration", "variables"} <= template.keys():
        raise SettingsError(
            f"work pool template {path} ({TEMPLATE_SETTING}) needs 'job_configuration' and 'variables' sections"
        )
    return template


def ensure_work_pool(name: str, template_path: Path) -> str:
    """Creates the Kubernetes work pool, or updates its base job template; returns what happened:
    `created`, `updated` or `unchanged`. Never pauses or resumes the pool."""
    template = load_template(template_path)
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(name=name, type=WORK_POOL_TYPE, base_job_template=template, description=DESCRIPTION)
            )
            return "created"
        if pool.type != WORK_POOL_TYPE:
            raise SettingsError(
                f"work pool {name!r} exists with type {pool.type!r}, not {WORK_POOL_TYPE!r}: "
                "delete it or pass another --work-pool name"
            )
        if pool.base_job_template == template and pool.description == DESCRIPTION:
            return "unchanged"
        client.update_work_pool(name, WorkPoolUpdate(base_job_template=template, description=DESCRIPTION))
        return "updated"


LOCAL_POOL: Final = "eia-local"
LOCAL_POOL_TYPE: Final = "process"
LOCAL_DESCRIPTION: Final = (
    "EIA pipeline flow runs as processes on the worker's machine, from a checkout (prefect.local.yaml)."
)


def ensure_local_pool(name: str = LOCAL_POOL) -> str:
    """Creates the process work pool of prefect.local.yaml with Prefect's default process template,
    or leaves it as it is; returns `created` or `unchanged`.

    A process pool needs nothing from this repository: the worker runs each flow run as a child process
    in the directory of the deployment's pull step. An existing pool keeps its template (a developer
    may have tuned it); only its type is checked, since a worker refuses a pool of another type
    ("Worker type mismatch!")."""
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type=LOCAL_POOL_TYPE,
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                    description=LOCAL_DESCRIPTION,
                )
            )
            return "created"
    if pool.type != LOCAL_POOL_TYPE:
        raise SettingsError(
            f"work pool {name!r} exists with type {pool.type!r}, not {LOCAL_POOL_TYPE!r}: "
            f"delete it (`prefect work-pool delete {name}`) and rerun `eia init --work-pool --local`"
        )
    return "unchanged"
