"""The database restarting in the middle of a run: every transaction either committed or rolled back,
the run ends (failed or completed, never hung), and a rerun leaves exactly the table of a clean run.

The database here is the test's own embedded PostgreSQL (the session one is shared), stopped with
`pg_ctl -m fast` (every session ends, as in a restart or failover) and started again a second later.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from flows.series import ingest_eia_series_timescale
from tasks.store.database import DatabaseUnavailable, transaction
from tests.flows.conftest import Setup
from tests.reliability.support import (
    OwnPostgres,
    Watcher,
    batches_are_all_or_nothing,
    batches_logged,
    loaded_plus_quarantined,
    no_duplicates,
    own_routes,
    runs_reconcile,
    snapshot,
)
from tests.reliability.test_eia_faults import clean_run, daily_specs, run

pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 120.0


def test_a_transaction_cut_by_a_restart_rolls_back_and_says_the_database_is_unavailable(tmp_path: object) -> None:
    from pathlib import Path

    pg = OwnPostgres(Path(str(tmp_path)))
    try:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE restart_probe (x int)")
        with pytest.raises(DatabaseUnavailable) as raised, transaction(pg.dsn) as conn:
            conn.execute("INSERT INTO restart_probe VALUES (1)")
            pg.stop()
            conn.execute("INSERT INTO restart_probe VALUES (2)")
        assert "lost the connection to the database" in str(raised.value)
        assert "rolled back" in str(raised.value)
        with pytest.raises(DatabaseUnavailable, match="is unavailable"):
            transaction(pg.dsn).__enter__()
        pg.start()
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("SELECT count(*) FROM restart_probe").fetchone() == (0,)
    finally:
        pg.close()


async def test_a_database_restart_mid_run_ends_the_run_cleanly_and_a_rerun_matches_a_clean_run(
    setup: Setup, tmp_path: object
) -> None:
    from pathlib import Path

    specs = own_routes(daily_specs(4, 30, prefix="D"))
    catalog, served, clean = await clean_run(setup, specs)  # on the session database

    pg = OwnPostgres(Path(str(tmp_path)))
    try:
        own = Setup(pg.dsn, setup.server, setup.tmp)
        await own.configure()
        setup.server.faults.latency_s = 0.3  # batches merge while other requests are still out

        def restart() -> None:
            pg.stop()
            time.sleep(1.0)
            pg.start()

        watcher = Watcher(batches_logged(pg.dsn, 1), restart).start()
        try:
            cut = await asyncio.wait_for(
                ingest_eia_series_timescale(catalog_path=catalog, return_state=True), RUN_TIMEOUT_S
            )
        finally:
            watcher.stop()
        assert watcher.fired_at is not None
        assert cut.is_failed() or cut.is_completed(), cut  # ended: neither hung nor crashed the process
        # Whatever the restart cut, no batch is half in the table.
        batches_are_all_or_nothing(pg.dsn)
        no_duplicates(pg.dsn)

        setup.server.faults.latency_s = 0.0
        state, _ = await run(catalog)
        assert state.is_completed(), state.message
        assert snapshot(pg.dsn) == clean
        assert loaded_plus_quarantined(pg.dsn) == served
        batches_are_all_or_nothing(pg.dsn)
        runs_reconcile(pg.dsn)
    finally:
        await setup.configure()  # point the blocks back at the session database
        pg.close()
