"""Kafka going away in the middle of a run: the load still commits, the outbox keeps every message, and
once the broker is back `eia outbox flush` delivers them; a consumer sees each (series_id, period,
version) exactly once.

The broker here is the test's own (the session broker is shared): stopped and started again on the
same port. Its storage is in memory, so what it held before the stop is read before the stop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from flows.cli.app import app
from tasks.publish.consumer import read_topic
from tasks.standin.data import DATE_FORMATS, synthetic_route_series
from tests.flows.conftest import Setup
from tests.reliability.support import (
    BreakerRow,
    Watcher,
    batches_are_all_or_nothing,
    batches_logged,
    breaker_row,
    loaded_plus_quarantined,
    no_duplicates,
    own_broker,
    runs_reconcile,
    scalar,
    wait_for_ledger,
)
from tests.reliability.test_eia_faults import daily_specs, run

pytestmark = pytest.mark.slow

REGISTRY = "mock://eia-reliability-broker"
SERIES_TOPIC = "aurum.ref.eia.series.v1"


def versions_seen(messages: list[tuple[str, dict[str, Any], dict[str, str]]]) -> Counter[tuple[str, str, int]]:
    """(key, raw period, version header) of every message, counted: a consumer's dedupe key."""
    return Counter((key, str(value["raw_period"]), int(headers["version"])) for key, value, headers in messages)


def expected_versions(dsn: str) -> set[tuple[str, str, int]]:
    """Every version every row of the table has had: 0 .. its current revision."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT series_id, raw_period, revision FROM eia_series_timeseries").fetchall()
    return {(sid, period, v) for sid, period, revision in rows for v in range(revision + 1)}


def cli(*args: str, dsn: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"EIA_DATABASE_URL": dsn})


async def test_a_broker_stopped_mid_run_keeps_the_load_and_a_flush_delivers_each_version_exactly_once(
    setup: Setup,
) -> None:
    specs = daily_specs(3, 40, prefix="K")
    rows = {
        s.entry_id: synthetic_route_series(
            s.route,
            s.frequency,
            n_points=s.n_points,
            facets=s.facets,
            column=s.column,
            unit=s.unit,
            unit_column=s.unit_column,
            start=s.start,
            value_fn=s.value,
        )
        for s in specs
    }
    for s in specs:  # the first 30 days now, 10 more (and revisions) for the second run
        setup.server.dataset.add_route_rows(s.route, s.frequency, DATE_FORMATS["daily"], rows[s.entry_id][:30])
    catalog = setup.catalog([s.entry() for s in specs])

    with own_broker() as broker:
        await setup.configure(kafka=(broker.bootstrap, REGISTRY))
        state, first = await run(catalog)
        assert state.is_completed(), state.message
        assert scalar(setup.dsn, "SELECT count(*) FROM eia_outbox WHERE sent_at IS NULL") == 0
        delivered_before = await asyncio.to_thread(
            read_topic, broker.bootstrap, SERIES_TOPIC, schema_registry_url=REGISTRY
        )
        assert len(delivered_before) == first.counts.inserted == 3 * 30

        # EIA publishes ten more days and revises the three latest known ones.
        for s in specs:
            for row in rows[s.entry_id][27:30]:
                row[s.column] = "9.99"
            setup.server.dataset.add_route_rows(s.route, s.frequency, DATE_FORMATS["daily"], rows[s.entry_id][30:])
        setup.server.faults.latency_s = 0.3  # leaves time between the first merged batch and the publish step
        batches_before = int(scalar(setup.dsn, "SELECT count(*) FROM eia_batch_log"))
        watcher = Watcher(batches_logged(setup.dsn, batches_before + 1), broker.stop).start()
        try:
            state, second = await run(catalog)
        finally:
            watcher.stop()

        # The broker died mid-run: the load committed anyway and every message waits in the outbox.
        assert watcher.fired_at is not None and not broker.running
        assert state.is_completed(), state.message
        assert (second.counts.inserted, second.counts.updated) == (3 * 10, 3 * 3)
        pending = int(scalar(setup.dsn, "SELECT count(*) FROM eia_outbox WHERE sent_at IS NULL"))
        assert pending == 3 * 10 + 3 * 3
        status = await asyncio.to_thread(cli, "outbox", "status", "--json", dsn=setup.dsn)
        assert status.exit_code == 0 and f'"pending": {pending}' in status.output, status.output

        # Flushing while the broker is still down: a clear line, a non-zero exit, nothing lost.
        down = await asyncio.to_thread(cli, "outbox", "flush", "--timeout", "1", dsn=setup.dsn)
        assert down.exit_code == 1, down.output
        assert f"{pending} outbox message(s) still pending" in down.output
        assert broker.bootstrap in down.output and "Traceback" not in down.output
        assert int(scalar(setup.dsn, "SELECT count(*) FROM eia_outbox WHERE sent_at IS NULL")) == pending

        broker.start()  # the same port, empty storage
        flushed = await asyncio.to_thread(cli, "outbox", "flush", dsn=setup.dsn)
        assert flushed.exit_code == 0, flushed.output
        assert f"outbox flushed: {pending} message(s) sent" in flushed.output
        delivered_after = await asyncio.to_thread(
            read_topic, broker.bootstrap, SERIES_TOPIC, schema_registry_url=REGISTRY
        )

    seen = versions_seen(delivered_before + delivered_after)
    assert [k for k, n in seen.items() if n > 1] == []  # exactly once per (series, period, version)
    assert set(seen) == expected_versions(setup.dsn)
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_outbox WHERE sent_at IS NULL") == 0
    served = 3 * 40
    assert loaded_plus_quarantined(setup.dsn) == served
    no_duplicates(setup.dsn)
    batches_are_all_or_nothing(setup.dsn)
    runs_reconcile(setup.dsn)
    assert breaker_row(setup.dsn) == BreakerRow("closed", 0)
    ledger = wait_for_ledger(setup.dsn, setup.server)
    assert ledger["requests"] == setup.server.stats.api_requests == first.requests + second.requests
