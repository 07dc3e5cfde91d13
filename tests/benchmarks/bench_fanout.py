"""Bulk fan-out benchmark (issue 17): two datasets with one worker, then with two, on this machine.

Not a test (pytest does not collect it). Run it by hand on an otherwise idle machine:

    .venv/bin/python tests/benchmarks/bench_fanout.py --size 1000000

It writes an EBA-like and an ELEC-like archive of `--size` observations each (tests/benchmarks/
archives.py, EIA's real bulk line format), serves them from the EIA stand-in, starts one embedded
PostgreSQL and one `prefect server`, deploys `ingest_eia_bulk/prod` and `ingest_eia_bulk/dataset`
(prefect.yaml, on a local `process` pool) and measures, each side on a fresh database after an
untimed `eia init`:

- **1 worker**: a `prod` run with `fan_out=false`: the datasets one after the other in one flow-run
  process, on one process worker (what one pod does today);
- **2 workers**: a `prod` run that fans out: one child run per dataset, each picked up by its own
  process worker (`--limit 1`), side by side; the parent waits on a third worker (on a pool, its own
  small pod, idle while it waits).

The wall time is from creating the flow run until the parent run is final, as a user waits for it;
the children's load times come from their eia_run_log rows. Both sides must load exactly 2 x size
observations. The ratio printed is 1-worker wall / 2-worker wall. Here the database and both
workers share the same CPUs, so the speed-up is bounded by PostgreSQL's share of the work; on a
pool with separate nodes the loads only share the database server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")

import psycopg  # noqa: E402
from prefect.client.orchestration import PrefectClient  # noqa: E402

from tasks.standin.data import ReplayDataset  # noqa: E402
from tasks.standin.server import EiaReplayServer  # noqa: E402
from tests.benchmarks.archives import DATASETS, Archive, write_archives  # noqa: E402
from tests.benchmarks.pg import Server  # noqa: E402
from tests.bulk.synthetic import manifest  # noqa: E402
from tests.deploy.prefect_server import LocalPrefect, local_prefect_server, run_cli, stop  # noqa: E402
from tests.deploy.spec import override_for_tests  # noqa: E402

BIN = Path(sys.executable).parent
POOL = "eia-bench-fanout"
STAMP = "2024-08-23T15:23:15-04:00"


def _deploy(prefect: LocalPrefect, tmp: Path) -> None:
    env = prefect.env()
    created = run_cli(["prefect", "work-pool", "create", POOL, "--type", "process"], env)
    assert created.returncode == 0, created.stdout + created.stderr
    config = override_for_tests(POOL)
    config["deployments"] = [d for d in config["deployments"] if d["entrypoint"] == "flows/bulk.py:ingest_eia_bulk"]
    override = tmp / "prefect.yaml"
    override.write_text(yaml.safe_dump(config, sort_keys=False))
    names = [arg for d in config["deployments"] for arg in ("--name", f"ingest_eia_bulk/{d['name']}")]
    done = run_cli(["prefect", "--no-prompt", "deploy", "--prefect-file", str(override), *names], env, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def _workers(prefect: LocalPrefect, env: dict[str, str], count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(count):
        with (logs / f"worker-{count}-{i}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process", "--limit", "1"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
    return procs


async def _run(api_url: str, parameters: dict[str, Any], timeout_s: float) -> tuple[float, str, str]:
    async with PrefectClient(api_url) as client:
        deployment = await client.read_deployment_by_name("ingest_eia_bulk/prod")
        started = time.perf_counter()
        run = await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
        while True:
            run = await client.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                return time.perf_counter() - started, str(run.state.name), str(run.state.message)
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"the bulk run did not finish in {timeout_s:.0f} s")
            await asyncio.sleep(0.5)


def _side(
    prefect: LocalPrefect, server: Server, standin: EiaReplayServer, archives: list[Archive], workers: int, tmp: Path
) -> dict[str, Any]:
    name = f"bench_fanout_{workers}"
    dsn = server.create(name)
    env = prefect.env(
        EIA_DATABASE_URL=dsn,
        EIA_API_URL=standin.api_url,
        EIA_BULK_URL=standin.bulk_url,
        EIA_DATA_DIR=str(tmp / f"data-{workers}"),
        PREFECT_WORKER_QUERY_SECONDS="1",
    )
    init = run_cli(["eia", "init"], env, cwd=tmp, timeout_s=600)
    if init.returncode != 0:
        raise RuntimeError(f"eia init failed:\n{init.stdout[-3000:]}{init.stderr[-3000:]}")
    procs = _workers(prefect, env, 1 if workers == 1 else workers + 1, tmp)
    try:
        parameters = {"datasets": [a.code for a in archives], "fan_out": workers > 1}
        wall, state, message = asyncio.run(_run(prefect.api_url, parameters, timeout_s=3600))
    finally:
        for proc in procs:
            stop(proc)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM eia_series_timeseries").fetchone()
        loads = conn.execute(
            """SELECT details->'datasets', extract(epoch FROM ended_at - started_at), host, pid FROM eia_run_log
               WHERE flow_name = 'ingest_eia_bulk' ORDER BY started_at"""
        ).fetchall()
    server.drop(name)
    return {
        "workers": workers,
        "wall_s": wall,
        "state": state,
        "message": message,
        "rows": row[0] if row else 0,
        "runs": loads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000, help="observations per dataset (default 1M)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="eia-bench-fanout-"))
    server = Server(tmp / "pgdata")
    folder = tmp / "archives"
    folder.mkdir()
    archives = write_archives(folder, 2 * args.size, DATASETS)
    dataset = ReplayDataset(routes={}, seriesid={})
    dataset.bulk_manifest = manifest(dict.fromkeys((a.code for a in archives), STAMP))
    dataset.bulk_files = {f"{a.code}.zip": a.path.read_bytes() for a in archives}
    standin = EiaReplayServer(dataset).start()
    results = []
    try:
        with local_prefect_server(tmp / "prefect-server") as prefect:
            _deploy(prefect, tmp)
            for workers in (1, 2):
                results.append(_side(prefect, server, standin, archives, workers, tmp))
    finally:
        standin.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    expected = sum(a.observations for a in archives)
    print(f"two datasets ({', '.join(f'{a.code} {a.observations:,}' for a in archives)}), {os.cpu_count()} CPUs")
    print("| workers | wall s | rows/s | state | loads (dataset: s, process) |")
    print("|---|---:|---:|---|---|")
    ok = True
    for r in results:
        ok &= r["state"] == "Completed" and r["rows"] == expected
        loads = "; ".join(
            f"{'+'.join(sorted(d or {}))}: {float(s):.1f} s, pid {p}" for d, s, _, p in r["runs"] if s is not None
        )
        print(f"| {r['workers']} | {r['wall_s']:.1f} | {r['rows'] / r['wall_s']:,.0f} | {r['state']} | {loads} |")
    if len(results) == 2:
        print(f"speed-up (1-worker wall / 2-worker wall): {results[0]['wall_s'] / results[1]['wall_s']:.2f}x")
    if not ok:
        print(f"FAILED: a side did not load exactly {expected:,} rows: {[(r['state'], r['rows']) for r in results]}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
