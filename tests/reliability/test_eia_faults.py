"""EIA misbehaving: every fault EIA really produces in one run, and a sustained outage that opens the
circuit breaker, which closes again through half-open once EIA is back.

Each test checks the suite's invariants: loaded + quarantined = served, no duplicates, every batch
all-or-nothing, counts reconcile, and the breaker, outbox and usage-ledger states.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from prefect.client.schemas.objects import State

from flows.series import SeriesRunResult, ingest_eia_series_timescale, run_result
from tasks.standin.server import EiaReplayServer
from tests.flows.conftest import Setup
from tests.flows.series_data import SeriesSpec, add_series
from tests.reliability.support import (
    BreakerRow,
    Watcher,
    batches_are_all_or_nothing,
    breaker_row,
    ledger_requests,
    loaded_plus_quarantined,
    no_duplicates,
    runs_reconcile,
    scalar,
    snapshot,
    wait_for_ledger,
)

pytestmark = pytest.mark.slow

REGISTRY = "mock://eia-reliability"


def daily_specs(count: int, points: int, prefix: str = "F", start: str = "2026-06-01") -> list[SeriesSpec]:
    return [
        SeriesSpec(
            f"{prefix.lower()}{i}",
            "natural-gas/pri/fut",
            "daily",
            "value",
            "$/MMBTU",
            {"series": f"{prefix}{i:02d}"},
            points,
            start,
            unit_column="units",
            base=3.1,
        )
        for i in range(count)
    ]


async def run(catalog: str, **params: Any) -> tuple[State[Any], SeriesRunResult]:
    state = await ingest_eia_series_timescale(catalog_path=catalog, return_state=True, **params)
    result = run_result(state)
    assert result is not None, state
    return state, result


async def clean_run(setup: Setup, specs: list[SeriesSpec]) -> tuple[str, int, list[tuple[Any, ...]]]:
    """Serves `specs` and runs them once on the session database: (catalog, rows served, the table a
    clean run leaves), which a rerun after a fault must match."""
    served = sum(len(add_series(setup.server.dataset, s)) for s in specs)
    catalog = setup.catalog([s.entry() for s in specs])
    state, _ = await run(catalog)
    assert state.is_completed(), state.message
    clean = snapshot(setup.dsn)
    assert len(clean) == served
    return catalog, served, clean


def switch_off_after(server: EiaReplayServer, fault: str, requests: int) -> Watcher:
    """Turns a boolean fault off once the stand-in has answered that many API requests with it on."""
    return Watcher(
        condition=lambda: server.stats.api_requests >= requests,
        action=lambda: setattr(server.faults, fault, False),
        every_s=0.002,
    ).start()


async def test_mixed_eia_faults_in_one_run_load_every_served_row_exactly_once(
    setup: Setup, kafka_bootstrap: str
) -> None:
    # Three pages at page_size 25, one series: the requests go in order.
    (spec,) = daily_specs(1, 70)
    served = len(add_series(setup.server.dataset, spec))
    faults = setup.server.faults
    # The stand-in draws one (500, malformed, timeout) triple per data request in arrival order, so with
    # this seed the three pages take six draws: ok, a body cut in half, an answer after the client gave
    # up, ok, HTTP 500, ok. The 429s and the error bodies with status 200 come first and draw nothing.
    faults.seed = 77
    faults.error_rate = 0.2
    faults.malformed_rate = 0.2
    faults.timeout_rate = 0.15
    faults.timeout_sleep_s = 2.0
    faults.burst_429 = 2  # OVER_RATE_LIMIT with Retry-After
    faults.retry_after_s = 1
    faults.error_200_body = True  # status 200, error body: the first requests
    await setup.configure(
        kafka=(kafka_bootstrap, REGISTRY),
        page_size=25,
        timeout_s=1.0,
        retries=12,
        retry_base_delay_s=0.02,
        breaker_fail_max=50,
    )
    watcher = switch_off_after(setup.server, "error_200_body", 2 + 2)  # after the two 429s, two of them
    try:
        state, result = await run(setup.catalog([spec.entry()]))
    finally:
        watcher.stop()

    assert state.is_completed(), state.message
    assert result.counts.received == result.counts.inserted == served
    assert loaded_plus_quarantined(setup.dsn) == served
    no_duplicates(setup.dsn)
    batches_are_all_or_nothing(setup.dsn)
    runs_reconcile(setup.dsn)
    # Every kind of fault happened, and every request EIA saw was reserved and recorded exactly once.
    stats = setup.server.stats
    # One 500 from the draws above; a machine slow enough to time out a good answer re-sends it and
    # takes further draws, which may add more, so the ledger is held to what EIA really answered.
    assert stats.statuses[500] >= 1 and stats.statuses[429] == 2
    ledger = wait_for_ledger(setup.dsn, setup.server)
    assert ledger["requests"] == stats.api_requests == result.requests
    assert (ledger["errors_server_error"], ledger["errors_rate_limited"]) == (stats.statuses[500], 2)
    assert ledger["errors_timeout"] >= 1  # the drawn one (a slow machine may add its own)
    # The two error bodies with status 200 always; the cut body too, unless a slow machine's timeout
    # re-send moved the draws past it (then the ledger holds the extra timeouts and 500s above).
    assert ledger["errors_malformed"] >= 2
    assert ledger["retries"] > 0
    # The breaker saw failures but never opened; the outbox is fully delivered.
    assert breaker_row(setup.dsn) == BreakerRow("closed", 0)
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_outbox WHERE sent_at IS NULL") == 0
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_outbox WHERE kind = 'observation'") == served


@pytest.fixture
def breaker_transitions(setup: Setup) -> Iterator[str]:
    """Records every state eia_breaker_state takes, in order (a test-only trigger, dropped afterwards)."""
    with psycopg.connect(setup.dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE test_breaker_transitions (id BIGSERIAL PRIMARY KEY, state TEXT NOT NULL, "
            "at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())"
        )
        conn.execute(
            """CREATE FUNCTION test_log_breaker_state() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                   IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
                       INSERT INTO test_breaker_transitions (state) VALUES (NEW.state);
                   END IF;
                   RETURN NEW;
               END $$"""
        )
        conn.execute(
            "CREATE TRIGGER test_breaker_transitions AFTER INSERT OR UPDATE ON eia_breaker_state "
            "FOR EACH ROW EXECUTE FUNCTION test_log_breaker_state()"
        )
    try:
        yield setup.dsn
    finally:
        with psycopg.connect(setup.dsn, autocommit=True) as conn:
            conn.execute("DROP TRIGGER IF EXISTS test_breaker_transitions ON eia_breaker_state")
            conn.execute("DROP FUNCTION IF EXISTS test_log_breaker_state()")
            conn.execute("DROP TABLE IF EXISTS test_breaker_transitions")


def transitions(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT state FROM test_breaker_transitions ORDER BY id").fetchall()]


async def test_a_sustained_outage_opens_the_breaker_and_a_half_open_trial_closes_it_once_eia_is_back(
    setup: Setup, breaker_transitions: str
) -> None:
    reset_timeout_s = 2.0
    (spec,) = daily_specs(1, 40, prefix="O")
    served = len(add_series(setup.server.dataset, spec))
    catalog = setup.catalog([spec.entry()])
    await setup.configure(
        retries=10, retry_base_delay_s=0.02, breaker_fail_max=3, breaker_reset_timeout_s=reset_timeout_s
    )
    setup.server.faults.outage = True

    state, outage = await run(catalog)

    assert state.is_failed() and "circuit breaker" in (state.message or "")
    assert setup.server.stats.api_requests == 3  # open after three failures, then no more requests
    assert transitions(setup.dsn) == ["closed", "open"]
    row = breaker_row(setup.dsn)
    assert row is not None and row.state == "open"
    assert outage.counts.received == 0 and scalar(setup.dsn, "SELECT count(*) FROM eia_series_timeseries") == 0

    # EIA recovers; once reset_timeout has passed, the next call is a half-open trial that succeeds.
    setup.server.faults.outage = False
    opened_at = scalar(setup.dsn, "SELECT extract(epoch FROM opened_at) FROM eia_breaker_state")
    await asyncio.sleep(max(0.0, float(opened_at) + reset_timeout_s + 0.2 - time.time()))
    setup.server.stats.reset()

    state, recovered = await run(catalog)

    assert state.is_completed(), state.message
    assert transitions(setup.dsn) == ["closed", "open", "half-open", "closed"]
    row = breaker_row(setup.dsn)
    assert row is not None and (row.state, row.fail_counter) == ("closed", 0)
    assert recovered.counts.inserted == served
    assert loaded_plus_quarantined(setup.dsn) == served
    no_duplicates(setup.dsn)
    batches_are_all_or_nothing(setup.dsn)
    runs_reconcile(setup.dsn)
    ledger = ledger_requests(setup.dsn)
    assert ledger["errors_server_error"] == 3  # the outage's three requests; the trial and pages succeeded
    assert scalar(setup.dsn, "SELECT count(*) FROM eia_outbox") == 0  # Kafka is off: nothing queued
