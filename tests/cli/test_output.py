"""What the `eia` commands print: ids and data verbatim, and lines an operator can act on."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import PREFECT_API_URL
from rich.console import Console
from typer.testing import CliRunner, Result

from flows.cli.app import app, breaker_line
from tasks.quota.breaker import BreakerStatus
from tests.cli.conftest import Setup
from tests.support.services import free_port

# A route series id as the series flow builds it (`…:<column>:<frequency>:…`): rich reads `:A:` as
# the emoji code for 🅰 and `[…]` as markup unless told not to.
SERIES_ID = "EIA2:petroleum/pri/spt:price:A:duoarea=NUS;product=EPCBRENT"
DETAIL = "unit [USD/bbl] not in units.csv :smile: [bold]not bold[/bold]"
EIA = str(Path(sys.executable).parent / "eia")


def eia(dsn: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"EIA_DATABASE_URL": dsn, "COLUMNS": "400"})


# --- markup off -------------------------------------------------------------------------------------


def test_quarantine_list_prints_series_ids_and_details_verbatim(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.cli.app

    # The console took its width when it was created; without a terminal that is 80, which folds ids.
    monkeypatch.setattr(flows.cli.app.out, "width", 400)
    with psycopg.connect(db) as conn:
        conn.execute(
            """INSERT INTO eia_series_quarantine (tenant_id, series_id, raw_period, raw_value, reason, detail,
                   source, dataset, ingest_batch_id)
               VALUES ('aurum-prod', %s, '2024', '[81.2]', 'unknown_unit', %s, 'eia-api-v2',
                   'petroleum/pri/spt', 'b1')""",
            (SERIES_ID, DETAIL),
        )

    result = eia(db, "quarantine", "list")

    assert result.exit_code == 0, result.output
    assert SERIES_ID in result.output and DETAIL in result.output and "[81.2]" in result.output
    assert "🅰" not in result.output and "😄" not in result.output


def test_an_error_line_keeps_its_label_and_prints_the_message_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    from flows.cli.app import error

    error(f"series {SERIES_ID}: {DETAIL}")

    assert capsys.readouterr().err == f"error: series {SERIES_ID}: {DETAIL}\n"


def test_the_demo_summary_prints_ids_and_messages_verbatim_on_any_console() -> None:
    from flows.cli.demo import DemoReport, FlowOutcome, print_summary

    report = DemoReport(root="demo")
    report.flows.append(FlowOutcome("ingest_eia_series_timescale", "completed", f"loaded {SERIES_ID}", 3.0))
    report.problems.append(f"flow x failed: {DETAIL}")
    buffer = io.StringIO()
    console = Console(file=buffer, width=400)  # markup and emoji on: the summary must not rely on the console

    print_summary(report, console)

    text = buffer.getvalue()
    assert f"loaded {SERIES_ID}" in text and f"problem: flow x failed: {DETAIL}" in text
    assert "🅰" not in text and "😄" not in text


# --- eia quality report -------------------------------------------------------------------------------


def test_the_quality_report_says_severity_and_outcome_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.cli.app
    from flows.cli.commands.quality import _print_report

    buffer = io.StringIO()
    monkeypatch.setattr(flows.cli.app, "out", Console(file=buffer, width=200, markup=False, emoji=False))

    def check(name: str, severity: str, outcome: str) -> dict[str, Any]:
        passed = int(outcome == "pass")
        return {
            "name": name,
            "severity": severity,
            "outcome": outcome,
            "measured": 0.0,
            "pass_rate": float(passed),
            "passed": passed,
            "evaluated": 1,
            "checked_at": "2026-11-25T10:00:00+00:00",
        }

    checks = [check("unknown_unit", "fail", "pass"), check("value_jump", "warn", "warn")]
    _print_report(checks, batches=1)

    rows = {line.split()[0]: line.split() for line in buffer.getvalue().splitlines() if line.strip()}
    assert rows["check"] == ["check", "severity", "outcome", "value", "pass", "rate", "at", "(UTC)"]
    assert rows["unknown_unit"][:3] == ["unknown_unit", "blocking", "passed"]
    assert rows["value_jump"][:3] == ["value_jump", "warning", "warned"]


# --- eia breaker status -------------------------------------------------------------------------------

NOW = datetime(2026, 11, 25, 19, 3, 0, tzinfo=UTC)


def test_an_open_breaker_says_since_when_and_when_its_trial_comes() -> None:
    opened = NOW - timedelta(seconds=20)
    status = BreakerStatus("eia-api", "open", 0, opened, opened)

    line = breaker_line(status, NOW, (60.0, "block 'eia-endpoints'"))

    assert line == (
        "breaker eia-api: open since 2026-11-25T19:02:40Z (20s ago); half-open trial in 40s, at "
        "2026-11-25T19:03:40Z (breaker_reset_timeout_s=60, block 'eia-endpoints'); close it now with "
        "`eia breaker reset`"
    )
    assert "failure" not in line  # the counter restarts at 0 when the breaker opens: it would mislead


def test_a_breaker_open_past_its_timeout_says_the_next_request_is_the_trial() -> None:
    opened = NOW - timedelta(minutes=5)

    line = breaker_line(BreakerStatus("eia-api", "open", 0, opened, opened), NOW, (60.0, "the default; no block"))

    assert "(5m 00s ago); half-open trial due: the next EIA request is the trial" in line


def test_closed_and_half_open_breakers_say_what_they_mean() -> None:
    closed = breaker_line(BreakerStatus("eia-api", "closed", 2, None, None), NOW, (None, ""))
    half_open = breaker_line(BreakerStatus("eia-api", "half-open", 0, NOW, NOW), NOW, (None, ""))

    assert closed == "breaker eia-api: closed (2 consecutive EIA failure(s) since the last success)"
    assert half_open.startswith("breaker eia-api: half-open: the next EIA request is the trial")


async def test_eia_breaker_status_on_an_open_breaker_reads_the_reset_timeout_from_the_block(setup: Setup) -> None:
    with psycopg.connect(setup.dsn, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO eia_breaker_state (name, state, fail_counter, opened_at)
               VALUES ('eia-api', 'open', 0, now() - interval '10 seconds')"""
        )

    text = await asyncio.to_thread(eia, setup.dsn, "breaker", "status")
    as_json = await asyncio.to_thread(eia, setup.dsn, "breaker", "status", "--json")

    assert text.exit_code == 0, text.output
    # setup's endpoints block: breaker_reset_timeout_s 30
    assert re.fullmatch(
        r"breaker eia-api: open since \S+Z \(1\ds ago\); half-open trial in (1\d|20)s, at \S+Z "
        r"\(breaker_reset_timeout_s=30, block 'eia-endpoints'\); close it now with `eia breaker reset`\n",
        text.output,
    ), text.output
    data = json.loads(as_json.output)
    assert data["state"] == "open" and 10 <= data["seconds_until_trial"] <= 20


# --- eia run cost ----------------------------------------------------------------------------------


async def test_the_cost_run_ends_with_its_state_and_numbers_not_completed(setup: Setup) -> None:
    result = await asyncio.to_thread(eia, setup.dsn, "run", "cost")

    assert result.exit_code == 0, result.output
    pattern = (
        r"cost state (ok|warning|critical): month spend \$\d+\.\d\d of \$\d+(\.\d+)? \(\d+\.\d\d%\), projected "
        r"\$\d+\.\d\d \(\d+\.\d\d%\) at month end; today \d[\d,]* of [\d,]+ requests \(\d+\.\d\d%\); events: .+"
    )
    assert re.search(rf"^cost check: {pattern}; snapshot \d+$", result.output, re.MULTILINE), result.output
    assert "COMPLETED" not in result.output
    async with get_client() as client:
        [run] = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["eia_cost_monitoring"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    assert run.state is not None and run.state.is_completed()
    assert run.state.message is not None and re.fullmatch(pattern, run.state.message), run.state.message


# --- eia serve -----------------------------------------------------------------------------------------


def test_eia_serve_says_where_it_listens_and_serves_with_the_database_down(
    prefect_server: None, closed_port: int
) -> None:
    metrics_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EIA_", "PREFECT_"))}
    env |= {
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "EIA_DATABASE_URL": f"postgresql://eia:pw@127.0.0.1:{closed_port}/eia",
    }
    args = [EIA, "serve", "--host", "127.0.0.1", "--port", "0", "--metrics-port", str(metrics_port)]
    with subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env) as process:
        try:
            assert process.stderr is not None
            deadline = time.monotonic() + 60
            line = ""
            while "listening on" not in line and time.monotonic() < deadline:
                line = process.stderr.readline()
                assert line or process.poll() is None, "eia serve exited before listening"
            found = re.search(
                r"eia serve listening on http://127\.0\.0\.1:(\d+) \(/health, /ready, /metrics, "
                r"POST /admin/reset-circuit-breaker\); /metrics also on http://127\.0\.0\.1:(\d+)$",
                line.strip(),
            )
            assert found, line
            port = int(found[1])
            assert port != 0 and int(found[2]) == metrics_port  # the port the OS chose for --port 0
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
            assert health.status_code == 200 and health.json()["database"] == "unreachable"
            metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
            assert "eia_collector_database_up 0.0" in metrics.text
        finally:
            process.terminate()
            process.wait(20)
