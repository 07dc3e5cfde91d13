"""Every `eia` command meets the three everyday faults with one scrubbed line naming the fix, exit 2.

The faults: the Prefect API is down, the database is down, a setting is malformed. Each command runs
in-process (typer's CliRunner: fast) against a closed port; a few run as real processes too, because
only a process shows what Python and Prefect print on the way out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from prefect.settings import PREFECT_API_URL, temporary_settings
from typer.testing import CliRunner, Result

from flows.cli.app import app

REPO = Path(__file__).resolve().parents[2]
EIA = str(Path(sys.executable).parent / "eia")
DEFAULT_CATALOG = REPO / "tasks" / "core" / "catalog.json"
PASSWORD = "pw-never-printed-4c1d"  # noqa: S105 (a test password)

# Every command and sub-command, with the arguments that make it do its work.
COMMANDS: dict[str, list[str]] = {
    "init": ["init"],
    "init --work-pool": ["init", "--work-pool"],
    "run series": ["run", "series"],
    "run bulk": ["run", "bulk", "--no-progress"],
    "run cost": ["run", "cost"],
    "quota status": ["quota", "status"],
    "quota reset": ["quota", "reset", "--hour"],
    "budget set": ["budget", "set", "8000"],
    "breaker status": ["breaker", "status"],
    "breaker reset": ["breaker", "reset"],
    "outbox status": ["outbox", "status"],
    "outbox flush": ["outbox", "flush"],
    "quarantine list": ["quarantine", "list"],
    "quarantine replay": ["quarantine", "replay"],
    "quality report": ["quality", "report"],
    "deployments list": ["deployments", "list"],
    "deployments pause": ["deployments", "pause"],
    "deployments resume": ["deployments", "resume"],
    "serve": ["serve", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0"],
    "catalog discover": ["catalog", "discover", "electricity/retail-sales"],
    "catalog validate": ["catalog", "validate", str(DEFAULT_CATALOG)],
    "catalog plan": ["catalog", "plan", str(DEFAULT_CATALOG)],
}
# The deployments commands talk to Prefect only. `eia serve` with the database down keeps serving on
# purpose (/health says so, /metrics exports eia_collector_database_up 0): see the collector tests below.
PREFECT_ONLY = {"deployments list", "deployments pause", "deployments resume"}
DATABASE_COMMANDS = [name for name in COMMANDS if name not in PREFECT_ONLY]
DATABASE_DOWN_COMMANDS = [name for name in DATABASE_COMMANDS if name != "serve"]
DSN_SETTING = "EIA_DATABASE_URL / block 'eia-database' field 'dsn'"


def invoke(args: list[str], env: dict[str, str | None]) -> Result:
    return CliRunner().invoke(app, args, env={"EIA_ACTOR": "ops-test", **env})


def one_line(result: Result) -> str:
    """The only line the command printed, after checking it exited 2 without a traceback."""
    output = result.output
    assert result.exit_code == 2, output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in output and PASSWORD not in output, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


@pytest.fixture
def prefect_down(closed_port: int) -> Iterator[str]:
    url = f"http://127.0.0.1:{closed_port}/api"
    with temporary_settings({PREFECT_API_URL: url}):
        yield url


def test_every_command_of_the_cli_is_in_the_fault_table() -> None:
    def leaves(command: Any, path: tuple[str, ...] = ()) -> Iterator[str]:
        subcommands = getattr(command, "commands", None)  # a group
        if subcommands is None:
            yield " ".join(path)
            return
        for name, sub in subcommands.items():
            yield from leaves(sub, (*path, name))

    # The demo brings its own server and database; the contract writers read neither (their faults are
    # in tests/quality/test_soda_cli.py).
    offline = {"demo", "quality contract", "quality datasource"}
    commands = set(leaves(typer.main.get_command(app))) - offline
    assert commands == {" ".join(w for w in name.split() if not w.startswith("-")) for name in COMMANDS}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_prefect_api_down_is_one_line_and_exit_2(name: str, prefect_down: str, tmp_path: Path) -> None:
    # No EIA_DATABASE_URL: the DSN comes from the database block, on the Prefect API.
    result = invoke(COMMANDS[name], {"EIA_DATABASE_URL": None, "EIA_DATA_DIR": str(tmp_path)})

    assert one_line(result) == (
        f"error: cannot reach the Prefect API at {prefect_down} (PREFECT_API_URL): All connection attempts failed; "
        "start the server (`prefect server start`) or point PREFECT_API_URL at a running one"
    )


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_prefect_api_url_without_a_scheme_is_one_line_and_exit_2(name: str, tmp_path: Path) -> None:
    with temporary_settings({PREFECT_API_URL: "localhost:4200/api"}):
        result = invoke(COMMANDS[name], {"EIA_DATABASE_URL": None, "EIA_DATA_DIR": str(tmp_path)})

    assert one_line(result) == (
        "error: PREFECT_API_URL=localhost:4200/api is not the http(s) URL of a Prefect API "
        "(for example http://127.0.0.1:4200/api): fix the setting or the active Prefect profile"
    )


@pytest.mark.parametrize("name", DATABASE_DOWN_COMMANDS)
def test_the_database_down_is_one_line_and_exit_2(name: str, prefect_server: None, closed_port: int) -> None:
    dsn = f"postgresql://eia:{PASSWORD}@127.0.0.1:{closed_port}/eia"

    line = one_line(invoke(COMMANDS[name], {"EIA_DATABASE_URL": dsn}))

    assert line.startswith("error: the database at 127.0.0.1/eia is unavailable (connection failed: "), line
    assert line.endswith(f"it may be restarting: retry later, or check {DSN_SETTING}"), line


@pytest.mark.parametrize("name", DATABASE_COMMANDS)
def test_a_malformed_database_url_is_one_line_and_exit_2(name: str, prefect_server: None) -> None:
    line = one_line(invoke(COMMANDS[name], {"EIA_DATABASE_URL": f"mysql://eia:{PASSWORD}@db/eia"}))

    assert line == f"error: database DSN ({DSN_SETTING}) must be a postgresql:// URL or a libpq key=value string"


def test_init_with_a_database_down_writes_no_block(prefect_server: None, closed_port: int) -> None:
    from blocks import DATABASE_BLOCK, EiaDatabase

    before = EiaDatabase.load(DATABASE_BLOCK) if _exists(DATABASE_BLOCK) else None
    dsn = f"postgresql://eia:{PASSWORD}@127.0.0.1:{closed_port}/eia"

    one_line(invoke(["init"], {"EIA_DATABASE_URL": dsn}))

    after = EiaDatabase.load(DATABASE_BLOCK) if _exists(DATABASE_BLOCK) else None
    assert _dsn_of(after) == _dsn_of(before) != dsn


def _exists(name: str) -> bool:
    from blocks import EiaDatabase

    try:
        EiaDatabase.load(name)
    except ValueError:
        return False
    return True


def _dsn_of(block: Any) -> str | None:
    return None if block is None or block.dsn is None else str(block.dsn.get_secret_value())


# --- as real processes ------------------------------------------------------------------------------


def run_eia(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EIA_", "PREFECT_"))}
    environ.update(env)
    return subprocess.run([EIA, *args], capture_output=True, text=True, env=environ, cwd=REPO, timeout=120)


def process_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stdout + result.stderr, result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr  # nothing else on the way out (Prefect's workers)
    return lines[0]


def test_eia_init_with_the_prefect_api_down_prints_one_line_not_a_traceback(closed_port: int, tmp_path: Path) -> None:
    result = run_eia(
        ["init"], PREFECT_API_URL=f"http://127.0.0.1:{closed_port}/api", EIA_DATA_DIR=str(tmp_path), COLUMNS="80"
    )

    assert process_line(result).startswith(f"error: cannot reach the Prefect API at http://127.0.0.1:{closed_port}/api")


def test_eia_quota_status_with_the_database_down_prints_one_line(prefect_server: None, closed_port: int) -> None:
    result = run_eia(
        ["quota", "status"],
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        EIA_DATABASE_URL=f"postgresql://eia:{PASSWORD}@127.0.0.1:{closed_port}/eia",
        COLUMNS="80",  # a narrow terminal: the line is not wrapped either
    )

    assert process_line(result).startswith("error: the database at 127.0.0.1/eia is unavailable (")
