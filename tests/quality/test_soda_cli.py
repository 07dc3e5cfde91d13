"""Soda's own CLI runs the contracts `eia quality contract` writes, with the data source `eia quality datasource`
writes, in a session of its own: every check is evaluated, the planted defects fail exactly their checks, and
the verdict on a staged batch is the gate's.

The `soda` console script runs as a subprocess against the real database, connecting as a role with a
password that reaches it only through the environment (libpq's PG* variables), never through the files.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typer.testing import CliRunner

from flows.cli.app import app
from flows.cli.commands.quality import CONNECTION_ENV
from tasks.normalize.observation import Observation
from tasks.quality.contract import CLI_CONNECTION_ENV, database_name
from tasks.quality.gate import run_gate
from tasks.quality.rules import RULES
from tasks.store.staging import BatchContext
from tests.quality.batches import (
    HENRY_HUB,
    MISO_LOCAL,
    RETAIL_PRICE,
    US48_DEMAND,
    clean_batch,
    replace,
    rows_of,
    stage,
    store,
)

TENANT = "t-soda-cli"
NOW = datetime.now(UTC)  # one clock for every batch of the module, so stored and staged rows line up
SODA = Path(sys.executable).with_name("soda")
ROLE = "eia_soda_cli"
# Soda's result table: | column | check | threshold | outcome | diagnostics |, a check's first row names it.
_ROW = re.compile(r"^\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|$")
_SUMMARY = re.compile(r"^\|\s*(Checks|Passed|Failed|Warned|Not Evaluated|Excluded|Runtime Errors)\s*\|\s*(\d+)\s*\|")


@dataclass(frozen=True)
class Verified:
    """What `soda contract verify` printed: each check's outcome and diagnostics, and the summary."""

    exit_code: int
    outcomes: dict[str, str]  # check name -> PASSED / FAILED / WARN / ...
    diagnostics: dict[str, dict[str, str]]
    summary: dict[str, int]
    output: str

    def named(self, outcome: str) -> set[str]:
        return {name for name, o in self.outcomes.items() if o == outcome}

    def failed_rows(self, name: str) -> int:
        return int(self.diagnostics[name]["failed_rows_count"])


def _parse(exit_code: int, output: str) -> Verified:
    outcomes: dict[str, str] = {}
    diagnostics: dict[str, dict[str, str]] = {}
    summary: dict[str, int] = {}
    current: str | None = None
    for line in output.splitlines():
        if m := _SUMMARY.match(line):
            summary[m.group(1)] = int(m.group(2))
            continue
        m = _ROW.match(line.strip())
        if not m or m.group(2).strip() == "Check":
            continue
        name, outcome, diagnostic = m.group(2).strip(), m.group(4).strip(), m.group(5).strip()
        if name:
            current = name
            outcomes[name] = outcome.split()[-1]  # drop the emoji
            diagnostics[name] = {}
        if current is not None and ": " in diagnostic:
            key, value = diagnostic.split(": ", 1)
            diagnostics[current][key] = value
    return Verified(exit_code, outcomes, diagnostics, summary, output)


@dataclass(frozen=True)
class Cli:
    """The two files written by the eia CLI, and the environment Soda connects with."""

    contract: Path
    stored_contract: Path
    data_source: Path
    env: dict[str, str]
    secrets: tuple[str, ...]  # what must never be in a written file: the DSN and the password

    def verify(self, contract: Path, *variables: str) -> Verified:
        sets = [arg for v in variables for arg in ("--set", v)]
        done = subprocess.run(
            [str(SODA), "contract", "verify", "-c", str(contract), "-ds", str(self.data_source), *sets],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        return _parse(done.returncode, done.stdout + done.stderr)


@pytest.fixture
def cli(db: str, tmp_path: Path) -> Cli:
    password = "pw-" + secrets.token_hex(8)
    with psycopg.connect(db, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone() is None:
            conn.execute(f"CREATE ROLE {ROLE}")
        conn.execute(f"ALTER ROLE {ROLE} LOGIN PASSWORD '{password}'")  # read-only: Soda only reads
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ROLE}")
    info = conninfo_to_dict(db)
    dsn = make_conninfo(db, user=ROLE, password=password)
    files = {name: tmp_path / name for name in ("contract.yml", "stored.yml", "ds.yml")}
    runner = CliRunner()
    for args in (
        ["quality", "contract", "--out", str(files["contract.yml"])],
        ["quality", "contract", "--stored", "--out", str(files["stored.yml"])],
        ["quality", "datasource", "--out", str(files["ds.yml"])],
    ):
        written = runner.invoke(app, args, env={"EIA_DATABASE_URL": dsn})
        assert written.exit_code == 0, written.output
        assert "wrote " in written.output
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "EIA_DATABASE_URL"}
    env |= {
        "PGHOST": str(info.get("host") or "localhost"),
        "PGPORT": str(info.get("port") or 5432),
        "PGDATABASE": database_name(db),
        "PGUSER": ROLE,
        "PGPASSWORD": password,
        "SODA_CORE_TELEMETRY_ENABLED": "false",
    }
    return Cli(files["contract.yml"], files["stored.yml"], files["ds.yml"], env, (dsn, password))


def _bad_batch() -> list[Observation]:
    """A real-shaped batch with defects for row rules, cross-row rules and warnings, one per series."""
    batch = clean_batch(NOW)
    hourly = rows_of(batch, US48_DEMAND)[1]
    batch = replace(
        batch,
        hourly,
        unit="furlongs per fortnight",
        canonical_unit=None,
        canonical_currency=None,
        conversion_factor=None,
        canonical_value=None,
    )
    batch = replace(batch, rows_of(batch, MISO_LOCAL)[0], frequency="minutely")
    batch = replace(
        batch, rows_of(batch, HENRY_HUB)[0], value=None, raw_value="n/a", value_flag="n/a", canonical_value=None
    )
    return [*batch, batch[rows_of(batch, RETAIL_PRICE)[0]]]  # one period staged twice


# Checks the bad batch fails and warns about, with their offending rows; every other check passes. The odd
# unit is also a second spelling within its series: the warning names every row of the series.
BAD_FAILS = {"unknown_unit": 1, "frequency_known": 1, "unique_series_period": 2}
BAD_WARNS = {"value_flag_known": 1, "series_single_unit_text": 4}


def _assert_every_check_evaluated(verified: Verified) -> None:
    assert verified.outcomes.keys() == {r.name for r in RULES}, verified.output
    assert verified.summary["Checks"] == len(RULES)
    assert (verified.summary["Not Evaluated"], verified.summary["Runtime Errors"]) == (0, 0), verified.output


def test_the_written_files_hold_neither_the_dsn_nor_the_password(cli: Cli) -> None:
    for path in (cli.contract, cli.stored_contract, cli.data_source):
        text = path.read_text()
        assert all(secret not in text for secret in cli.secrets), path.name
    connection = yaml.safe_load(cli.data_source.read_text())["connection"]
    assert {k: connection[k] for k in CLI_CONNECTION_ENV} == {k: f"${{env.{v}}}" for k, v in CLI_CONNECTION_ENV.items()}
    assert tuple(CLI_CONNECTION_ENV.values()) == CONNECTION_ENV  # what --help names is what the file reads
    assert "pg_temp" not in cli.contract.read_text() and "pg_temp" not in cli.stored_contract.read_text()


def test_soda_cli_verifies_a_staged_batch_checking_only_that_batch(db: str, cli: Cli) -> None:
    clean, bad = BatchContext.new(TENANT, "run-cli", "cli"), BatchContext.new(TENANT, "run-cli", "cli")
    stage(db, clean, clean_batch(NOW))
    stage(db, bad, _bad_batch())

    passed = cli.verify(cli.contract, f"BATCH_ID={clean.batch_id}")
    _assert_every_check_evaluated(passed)
    assert passed.named("PASSED") == {r.name for r in RULES} and passed.exit_code == 0

    failed = cli.verify(cli.contract, f"BATCH_ID={bad.batch_id}")
    _assert_every_check_evaluated(failed)
    assert failed.named("FAILED") == set(BAD_FAILS) and failed.named("WARN") == set(BAD_WARNS)
    assert {n: failed.failed_rows(n) for n in {**BAD_FAILS, **BAD_WARNS}} == {**BAD_FAILS, **BAD_WARNS}
    assert failed.diagnostics["batch_not_empty"]["check_rows_tested"] == str(len(_bad_batch()))
    assert failed.exit_code == 1  # Soda's code for failed checks

    expected = cli.verify(cli.contract, f"BATCH_ID={clean.batch_id}", "MIN_ROWS=1000", "MAX_ROWS=5000")
    assert expected.named("WARN") == {"row_count_expected"} and expected.summary["Runtime Errors"] == 0
    assert expected.exit_code == 2  # warnings only


def test_the_cli_verdict_on_a_batch_is_the_gates(db: str, cli: Cli) -> None:
    ctx = BatchContext.new(TENANT, "run-cli", "cli")
    stage(db, ctx, _bad_batch())

    gate = run_gate(db, ctx)
    verified = cli.verify(cli.contract, f"BATCH_ID={ctx.batch_id}")

    assert gate.errors == [] and verified.summary["Runtime Errors"] == 0
    assert (verified.named("FAILED"), verified.named("WARN")) == (set(gate.failed), set(gate.warned))
    counted = {name for name, d in verified.diagnostics.items() if "failed_rows_count" in d}
    assert counted == {r.name for r in RULES if r.predicate is not None}
    assert {n: float(verified.failed_rows(n)) for n in counted} == {
        c.name: c.measured for c in gate.checks if c.name in counted
    }


def test_soda_cli_audits_the_stored_table(db: str, cli: Cli) -> None:
    store(db, clean_batch(NOW), TENANT)
    clean = cli.verify(cli.stored_contract)
    _assert_every_check_evaluated(clean)
    assert clean.named("PASSED") == {r.name for r in RULES} and clean.exit_code == 0

    # Rows that reached the table without the gate (an older release, a manual load): the audit finds them.
    # The merge updates a stored row only when its value changes, so the rows whose unit or frequency is
    # wrong go in as older periods of their series; the withheld-value row replaces its stored row.
    stored = clean_batch(NOW)
    bad = [o for o in _bad_batch()[: len(stored)] if o not in stored]
    older = timedelta(hours=100)
    store(db, [o if o.series_id == HENRY_HUB else _moved(o, -older) for o in bad], TENANT)
    audit = cli.verify(cli.stored_contract)
    _assert_every_check_evaluated(audit)
    # The table has no duplicates (its key forbids them); the US48 series now has 5 rows.
    fails = {"unknown_unit": 1, "frequency_known": 1}
    warns = {"value_flag_known": 1, "series_single_unit_text": 5}
    assert (audit.named("FAILED"), audit.named("WARN")) == (set(fails), set(warns))
    assert {n: audit.failed_rows(n) for n in {**fails, **warns}} == {**fails, **warns}
    assert audit.diagnostics["batch_not_empty"]["check_rows_tested"] == str(len(stored) + 2)


def _moved(o: Observation, delta: timedelta) -> Observation:
    return dataclasses.replace(o, period=o.period + delta, period_end=o.period_end + delta)


def test_the_contract_goes_to_standard_output_without_out(tmp_path: Path) -> None:
    written = CliRunner().invoke(app, ["quality", "contract", "--database", "eia"], env={"EIA_DATABASE_URL": ""})
    assert written.exit_code == 0, written.output
    contract = yaml.safe_load(written.stdout)
    assert contract["dataset"] == "eia/eia/public/eia_series_staging"
    assert [next(iter(c.values()))["qualifier"] for c in contract["checks"]] == [r.name for r in RULES]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["quality", "contract"], {"EIA_DATABASE_URL": "", "PGDATABASE": ""}, "which database? pass --database NAME"),
        (["quality", "contract", "--database", "eia", "--out", "{tmp}/missing/c.yml"], {}, "cannot write"),
        (["quality", "datasource", "--out", "{tmp}"], {}, "cannot write"),
        (["quality", "contract", "--stored"], {"EIA_DATABASE_URL": "bad="}, "cannot be parsed"),
    ],
)
def test_expected_faults_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args], env=env)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ") and message in result.output
