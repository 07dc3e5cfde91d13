"""Bulk load benchmark: `eia run bulk` end to end against the raw COPY + merge limit, and its peak memory.

Not a test (pytest does not collect it): run it by hand on an otherwise idle machine, e.g.

    /work/venv/bin/python tests/benchmarks/bench_bulk.py --sizes 1000000 5000000

For each size it generates a synthetic archive in the real bulk line format (tests/bulk/synthetic.py:
ELEC-like monthly/quarterly/annual lines and EBA-like hourly lines), then measures, in the same run
and on the same database (plain PostgreSQL, embedded unless EIA_BENCH_DATABASE_URL is set):

- (a) the raw limit: the same rows, cut into the same batches, COPYed into staging with psycopg's
  `write_row` from pre-built tuples, then merged (`ensure_partitions` + `merge_batch`), one staging
  and one merge transaction per batch. Parsing and row building are not timed; no gate.
- (b) `eia run bulk --dataset SYN` in a subprocess, against the EIA stand-in serving the archive:
  manifest, download, verification, streaming parse, quarantine, COPY, Soda gate, merge, metadata,
  checkpoints. Its rows/s use the dataset's own duration as the command prints it (download to
  version recorded); the command's wall time, which adds Python start-up and Prefect's temporary
  server, is reported beside it.
- (c) the peak RSS of that `eia run bulk` process (VmHWM from /proc, polled until it exits).

(b) and (c) run the way a Kubernetes work-pool pod runs a flow: `PREFECT_API_URL` points at a Prefect
server (here a local `prefect server start`). Without it, Prefect's ephemeral mode starts a temporary
server and imports Prefect's whole server package (SQLAlchemy, FastAPI, ...) into the flow's own
process: about 85 MB more, measured. That is what a laptop `eia run bulk` with no settings costs, so
the peak RSS of a second, ephemeral-mode run is reported beside it (`--no-ephemeral` skips it).

Each measurement starts from empty tables with no time-series partitions. Results go to stdout
and to tests/benchmarks/results-bulk.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")

import psycopg  # noqa: E402

from tasks.bulk.archive import ArchiveLimits, verify_archive  # noqa: E402
from tasks.bulk.checkpoints import Position  # noqa: E402
from tasks.bulk.load import cut_batches  # noqa: E402
from tasks.bulk.reader import MemberReader  # noqa: E402
from tasks.standin.data import ReplayDataset  # noqa: E402
from tasks.standin.server import EiaReplayServer  # noqa: E402
from tasks.store.database import embedded_dsn, transaction  # noqa: E402
from tasks.store.merge import ensure_partitions, merge_batch  # noqa: E402
from tasks.store.migrations import apply_migrations  # noqa: E402
from tasks.store.staging import _COPY_SQL, BatchContext, _row, drop_staged  # noqa: E402
from tests.bulk.synthetic import manifest, synthetic_archive_lines, write_archive  # noqa: E402
from tests.deploy.prefect_server import local_prefect_server  # noqa: E402

EIA = str(Path(sys.executable).with_name("eia"))
RESULTS = REPO / "tests" / "benchmarks" / "results-bulk.md"
_TABLES = (
    "eia_series_timeseries, eia_series_staging, eia_series_quarantine, eia_series_revisions, eia_series_metadata, "
    "eia_categories, eia_batch_log, eia_quality_results, eia_outbox, eia_bulk_versions, eia_bulk_checkpoints, "
    "eia_run_log"
)
_DATASET_LINE = re.compile(r"SYN: loaded .*?: (\d+) rows received, (\d+) inserted.* in (\d+) batches, ([\d.]+) s")


@dataclass
class Result:
    observations: int
    archive_mb: float
    raw_s: float
    bulk_s: float
    bulk_wall_s: float
    peak_rss_mb: float
    batches: int
    ephemeral_rss_mb: float | None

    @property
    def raw_rate(self) -> float:
        return self.observations / self.raw_s

    @property
    def bulk_rate(self) -> float:
        return self.observations / self.bulk_s


def fresh(dsn: str) -> None:
    """Empty tables and no partitions, so every measurement starts from the same state."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY")
        parts = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'eia\\_series\\_timeseries\\_p%'"
        ).fetchall()
        for (part,) in parts:
            conn.execute(f'DROP TABLE "{part}"')
        conn.execute("VACUUM ANALYZE")


def raw_copy_and_merge(dsn: str, archive: Path, batch_size: int) -> tuple[float, int]:
    """(a): COPY pre-built rows of the same batches, then merge each; returns (timed seconds, rows)."""
    info = verify_archive(archive, "SYN", ArchiveLimits(1 << 40, 1000))
    timed = 0.0
    rows_total = 0
    with MemberReader(info, max_line_bytes=1 << 30) as reader:
        for batch in cut_batches(reader, "SYN", batch_size=batch_size, max_line_bytes=1 << 30, start=Position()):
            ctx = BatchContext.new("aurum-prod", "bench", "bench-raw")
            rows = [_row(ctx, o) for o in batch.result.observations]  # not timed: the producer is given
            started = time.perf_counter()
            with transaction(dsn) as conn, conn.cursor() as cur, cur.copy(_COPY_SQL) as copy:
                for row in rows:
                    copy.write_row(row)
            with transaction(dsn) as conn:
                ensure_partitions(conn, ctx.batch_id)
                merge_batch(conn, ctx, outbox_topic=None)
                drop_staged(conn, ctx.batch_id)
            timed += time.perf_counter() - started
            rows_total += len(rows)
    return timed, rows_total


def _peak_rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) if match else 0


def eia_run_bulk(env: dict[str, str], work: Path, batch_size: int) -> tuple[float, float, float, int, str]:
    """(b) and (c): `eia run bulk` in a subprocess; returns (dataset s, wall s, peak RSS MB, batches, output)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            EIA,
            "run",
            "bulk",
            "--dataset",
            "SYN",
            "--work-dir",
            str(work),
            "--no-progress",
            "--batch-size",
            str(batch_size),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _peak_rss_kb(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - started
    output = proc.stdout.read() if proc.stdout else ""
    match = _DATASET_LINE.search(output)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"eia run bulk failed (exit {proc.returncode}):\n{output[-4000:]}")
    return float(match.group(4)), wall, peak / 1024, int(match.group(3)), output


def _measure(args: argparse.Namespace, tmp: Path, api_url: str) -> list[Result]:
    dsn = os.environ.get("EIA_BENCH_DATABASE_URL") or embedded_dsn(tmp / "pgdata")
    apply_migrations(dsn)
    server = EiaReplayServer(ReplayDataset(routes={}, seriesid={})).start()
    ephemeral = {
        **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
        "PREFECT_HOME": str(tmp / "prefect"),
        "EIA_DATABASE_URL": dsn,
        "EIA_BULK_URL": server.bulk_url,
        "EIA_DATA_DIR": str(tmp / "data"),
        "SODA_CORE_TELEMETRY_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    worker = {**ephemeral, "PREFECT_API_URL": api_url}
    for env in (worker, ephemeral):
        subprocess.run([EIA, "init"], env=env, check=True, capture_output=True)
    results: list[Result] = []
    for size in args.sizes:
        archive = tmp / f"SYN-{size}.zip"
        t = time.perf_counter()
        write_archive(archive, "SYN", synthetic_archive_lines(size))
        print(
            f"[{size:,}] archive: {archive.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t:.1f} s", flush=True
        )

        fresh(dsn)
        raw_s, rows = raw_copy_and_merge(dsn, archive, args.batch_size)
        print(
            f"[{size:,}] (a) raw COPY + merge: {rows:,} rows in {raw_s:.1f} s = {rows / raw_s:,.0f} rows/s", flush=True
        )

        server.dataset.bulk_files = {"SYN.zip": archive.read_bytes()}
        fresh(dsn)
        server.dataset.bulk_manifest = manifest({"SYN": f"2024-01-01T00:00:00-05:00#{size}"})
        bulk_s, wall, rss, batches, _ = eia_run_bulk(worker, tmp / f"work-{size}", args.batch_size)
        print(
            f"[{size:,}] (b) eia run bulk: {bulk_s:.1f} s = {size / bulk_s:,.0f} rows/s "
            f"(wall {wall:.1f} s, {batches} batches); (c) peak RSS {rss:.0f} MB",
            flush=True,
        )
        ephemeral_rss = None
        if not args.no_ephemeral:
            fresh(dsn)
            server.dataset.bulk_manifest = manifest({"SYN": f"2024-01-01T00:00:00-05:00#{size}"})
            _, _, ephemeral_rss, _, _ = eia_run_bulk(ephemeral, tmp / f"work-e-{size}", args.batch_size)
            print(f"[{size:,}] (c) peak RSS in ephemeral mode: {ephemeral_rss:.0f} MB", flush=True)
        server.dataset.bulk_files = {}
        results.append(Result(size, archive.stat().st_size / 1e6, raw_s, bulk_s, wall, rss, batches, ephemeral_rss))
        archive.unlink()
    server.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-ephemeral", action="store_true", help="skip the ephemeral-mode RSS run")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="eia-bench-bulk-"))
    try:
        with local_prefect_server(tmp / "prefect-server") as prefect:
            results = _measure(args, tmp, prefect.api_url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    table = [
        "| observations | archive | batches | (a) raw COPY + merge | (b) `eia run bulk` | (b)/(a) | (b) wall "
        "| (c) peak RSS | (c) ephemeral mode |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        table.append(
            f"| {r.observations:,} | {r.archive_mb:.1f} MB | {r.batches} | {r.raw_rate:,.0f} rows/s ({r.raw_s:.1f} s) "
            f"| {r.bulk_rate:,.0f} rows/s ({r.bulk_s:.1f} s) | {r.bulk_rate / r.raw_rate:.2f} | {r.bulk_wall_s:.1f} s "
            f"| {r.peak_rss_mb:.0f} MB | {f'{r.ephemeral_rss_mb:.0f} MB' if r.ephemeral_rss_mb else 'not run'} |"
        )
    machine = f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, batch size {args.batch_size:,}"
    text = "\n".join(
        [
            "# Bulk load benchmark",
            "",
            f"`python tests/benchmarks/bench_bulk.py --sizes {' '.join(map(str, args.sizes))}` on "
            f"{time.strftime('%Y-%m-%d')} ({machine}). Targets: (b)/(a) >= 0.7; peak RSS <= 300 MB.",
            "See the script's docstring for what (a), (b) and (c) measure. (b) and (c) talk to a Prefect server,",
            "as a work-pool pod does; the last column is the same run in Prefect's ephemeral mode (no API URL).",
            "",
            *table,
            "",
        ]
    )
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
