"""A real `prefect server start` in a subprocess, and the env that points Prefect CLIs at it.

The deployment tests need what users have: a separate Prefect server (SQLite, its own PREFECT_HOME)
that `prefect deploy`, `prefect worker start` and `eia` talk to over HTTP. The ephemeral in-process
server of the other tests cannot host a worker in another process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.services import free_port

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LocalPrefect:
    api_url: str
    home: Path
    log: Path

    def env(self, **extra: str) -> dict[str, str]:
        """This process's environment, with Prefect pointed at the local server and nothing else."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_API_URL=self.api_url,
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_CLI_PROMPT="false",
            SODA_CORE_TELEMETRY_ENABLED="false",
            COLUMNS="200",
        )
        env.update(extra)
        return env


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Stops a process group started by a test (SIGTERM, then SIGKILL if it does not stop in time)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout_s)


@contextlib.contextmanager
def local_prefect_server(home: Path) -> Iterator[LocalPrefect]:
    """Starts `prefect server start` on a free port (SQLite under `home`); stops it on exit."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = LocalPrefect(f"http://127.0.0.1:{port}/api", home, home / "server.log")
    env = server.env(
        PREFECT_UI_ENABLED="false",
        # No scheduled runs: a worker in these tests must pick up exactly the run a test created.
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
        PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED="false",
    )
    env.pop("PREFECT_API_URL")
    with server.log.open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{server.api_url}/health", timeout=1.0).status_code == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"prefect server did not start on port {port}:\n{server.log.read_text()[-3000:]}"
                    )
                time.sleep(0.2)
            yield server
        finally:
            stop(proc)


def run_cli(
    args: list[str], env: Mapping[str, str], *, cwd: Path | None = None, timeout_s: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Runs a CLI from this venv's bin directory (prefect, eia) in its own process group, and kills
    the whole group (a worker's flow-run children included) if it outlives `timeout_s`."""
    proc = subprocess.Popen(
        [str(BIN / args[0]), *args[1:]],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        stdout, stderr = proc.communicate()
        raise AssertionError(
            f"{' '.join(args)} did not finish in {timeout_s:.0f} s:\n{stdout[-3000:]}\n{stderr[-3000:]}"
        ) from None
    finally:
        kill_group(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def kill_group(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Kills what is left of a process group started with start_new_session=True."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
