"""The series flow runs as a login that is only a member of `eia_writer` (ledger, breaker, run log,
staging, gate, merge, outbox); `eia outbox status|flush` report plainly when Kafka is off.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from typer.testing import CliRunner

from flows.cli.app import app
from flows.series import ingest_eia_series_timescale, run_result
from tests.flows.conftest import Setup
from tests.flows.series_data import SEVEN, add_series

pytestmark = pytest.mark.slow


@pytest.fixture
def writer_dsn(db: str) -> Iterator[str]:
    name, password = f"eia_t_flow_{secrets.token_hex(4)}", secrets.token_hex(16)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE eia_writer").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    try:
        yield make_conninfo(db, user=name, password=password)
    finally:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


async def test_the_series_flow_runs_as_a_member_of_eia_writer(setup: Setup, writer_dsn: str) -> None:
    spec = SEVEN[2]  # monthly retail price: a few months ahead of any partition made so far
    served = len(add_series(setup.server.dataset, spec))
    await Setup(writer_dsn, setup.server, setup.tmp).configure()
    try:
        state = await ingest_eia_series_timescale(catalog_path=setup.catalog([spec.entry()]), return_state=True)
    finally:
        await setup.configure()
    result = run_result(state)
    assert state.is_completed(), state.message
    assert result is not None and result.counts.inserted == served
    with psycopg.connect(setup.dsn) as conn:
        assert conn.execute("SELECT status FROM eia_run_log").fetchone() == ("completed",)
        assert conn.execute("SELECT sum(requests) FROM eia_usage_ledger").fetchone() == (result.requests,)
        assert conn.execute("SELECT state FROM eia_breaker_state").fetchone() == ("closed",)


def cli(*args: str, dsn: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"EIA_DATABASE_URL": dsn})


async def test_outbox_commands_with_kafka_off(setup: Setup) -> None:
    status = await asyncio.to_thread(cli, "outbox", "status", "--json", dsn=setup.dsn)
    assert status.exit_code == 0, status.output
    assert json.loads(status.output) == {
        "pending": 0,
        "oldest_age_s": None,
        "kafka": {"enabled": False, "bootstrap_servers": None},
    }
    flush = await asyncio.to_thread(cli, "outbox", "flush", dsn=setup.dsn)
    assert flush.exit_code == 0 and "nothing to flush" in flush.output

    # Rows left by a time when Kafka was configured: a flush cannot deliver them and says what to set.
    with psycopg.connect(setup.dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO eia_outbox (topic, message_key, payload, kind) VALUES ('t', 'k', '{}', 'observation')"
        )
    status = await asyncio.to_thread(cli, "outbox", "status", dsn=setup.dsn)
    assert status.exit_code == 0 and "outbox: 1 message(s) pending" in status.output and "Kafka: off" in status.output
    flush = await asyncio.to_thread(cli, "outbox", "flush", dsn=setup.dsn)
    assert flush.exit_code == 2
    assert "1 message(s) wait in the outbox but Kafka publishing is off: set EIA_KAFKA_BOOTSTRAP" in " ".join(
        flush.output.split()
    )
    assert "Traceback" not in flush.output
