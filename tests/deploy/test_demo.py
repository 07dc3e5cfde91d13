"""`eia demo` on a clean machine: offline, isolated from the user's settings, and ending with rows,
a passing quality report and a working /metrics."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy.prefect_server import kill_group

DEMO_TIMEOUT_S = 300  # the issue's bound on this 2-core machine
COLLECTOR_EXISTS = importlib.util.find_spec("flows.cli.commands.serve") is not None


@pytest.mark.slow
def test_eia_demo_in_a_clean_environment_loads_rows_passes_quality_and_serves_metrics(tmp_path: Path) -> None:
    user_prefect_home = tmp_path / "user-prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EIA_"))}
    env.update(
        EIA_DATA_DIR=str(tmp_path / "eia-data"),
        PREFECT_HOME=str(user_prefect_home),
        # The user's real settings: the demo must not use (or touch) any of them.
        PREFECT_API_URL="http://127.0.0.1:9/api",
        EIA_DATABASE_URL="postgresql://nobody@127.0.0.1:9/not-the-demo",
        EIA_API_KEY="the-users-real-key",
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "eia"), "demo", "--keep-serving"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Serving until Ctrl-C" in line or time.monotonic() - started > DEMO_TIMEOUT_S:
                break
        output = "".join(lines)
        assert "Serving until Ctrl-C" in output, output[-5000:]
        assert time.monotonic() - started < DEMO_TIMEOUT_S
        assert "demo OK" in output, output[-5000:]

        match = re.search(r"^Metrics: (http://\S+/metrics)$", output, re.MULTILINE)
        if COLLECTOR_EXISTS:
            assert match, output[-3000:]
            metrics = httpx.get(match.group(1), timeout=10).text
            for name in ("eia_requests_total", "eia_quality_score", "eia_last_ingestion_timestamp_seconds"):
                assert re.search(rf"^{name}[{{ ]", metrics, re.MULTILINE), name
            quality = re.search(r'^eia_quality_score\{window="latest"\} (\S+)$', metrics, re.MULTILINE)
            assert quality and float(quality.group(1)) >= 0.95
        else:  # switches on by itself when `eia serve` lands
            assert match is None and "not part of this version yet" in output

        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest[-3000:]
    finally:
        kill_group(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    summary = json.loads((tmp_path / "eia-data" / "demo" / "summary.json").read_text())
    assert summary["ok"] is True, summary["problems"]
    assert summary["rows"]["eia_series_timeseries"] > 0
    assert summary["series"] > 0
    flows = {f["flow"]: f["status"] for f in summary["flows"]}
    assert flows["ingest_eia_series_timescale"] == "completed"
    assert "failed" not in flows.values(), flows
    quality = summary["quality"]
    assert quality["all_passed"] and quality["batches"] > 0 and quality["score"] >= 0.95
    assert summary["metrics_ok"] is (True if COLLECTOR_EXISTS else None)
    # Isolation: nothing was written to the user's Prefect home; their key never reached the demo.
    assert not user_prefect_home.exists() or not any(user_prefect_home.rglob("*"))
    assert "the-users-real-key" not in output + rest
