"""`eia run series` and the series run's message speak one vocabulary: observations (what the table holds)
from API rows (what EIA sent), with every outcome counted, and a rerun says its observations were unchanged."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from flows.cli.app import app
from tests.flows.conftest import Setup
from tests.flows.series_data import seven_series_dataset
from tests.support.services import scalar

pytestmark = pytest.mark.slow


def test_eia_run_series_counts_observations_from_api_rows_and_a_rerun_says_all_were_unchanged(setup: Setup) -> None:
    dataset, entries, served = seven_series_dataset()  # one observation per API row in these series
    setup.server.dataset = dataset
    catalog = setup.catalog(entries)
    runner = CliRunner()

    first = runner.invoke(app, ["run", "series", "--catalog", catalog])
    requests = setup.server.stats.api_requests
    first_message = scalar(setup.dsn, "SELECT message FROM eia_run_log ORDER BY started_at DESC LIMIT 1")
    setup.server.stats.reset()
    second = runner.invoke(app, ["run", "series", "--catalog", catalog])
    second_message = scalar(setup.dsn, "SELECT message FROM eia_run_log ORDER BY started_at DESC LIMIT 1")

    assert first.exit_code == 0, first.output
    assert re.search(
        rf"^run \S+: completed: {served} inserted, 0 updated, 0 unchanged, 0 quarantined, 0 skipped "
        rf"from {served} observations \({served} API rows\); {requests} EIA requests$",
        first.output,
        re.MULTILINE,
    ), first.output
    assert (
        first_message
        == f"{served} inserted, 0 updated, 0 unchanged, 0 quarantined from {served} observations ({served} API rows)"
    )
    assert second.exit_code == 0, second.output
    again = re.search(
        r"^run \S+: completed: 0 inserted, 0 updated, (\d+) unchanged, 0 quarantined, 0 skipped "
        rf"from \1 observations \(\1 API rows\); {setup.server.stats.api_requests} EIA requests$",
        second.output,
        re.MULTILINE,
    )
    assert again and int(again.group(1)) > 0, second.output
    n = again.group(1)
    assert second_message == f"0 inserted, 0 updated, {n} unchanged, 0 quarantined from {n} observations ({n} API rows)"
