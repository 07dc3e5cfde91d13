"""The peer a user would pick instead of `eia run bulk`: a minimal, idiomatic dlt pipeline on the same zips.

What a data engineer writes in an afternoon with dlt 1.31 (the `bench` extra): a resource that
streams each archive's member line by line and yields one row per observation (series_id, the
period's UTC start, value), merged on (series_id, period) into PostgreSQL. No gate, no revisions,
no quarantine, no outbox. The benchmark runs it as a subprocess, so that its memory is its own:

    python tests/benchmarks/dlt_pipeline.py --credentials URL --loader-file-format csv A.zip B.zip

It imports nothing from the project. The last line it prints is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt

TABLE = "observations"
DATASET = "eia_bulk"


def period_start(token: str, code: str) -> datetime:
    """The UTC start of a bulk period token: 2024, 2024Q4, 202412, 20231231T23Z."""
    if code == "A":
        return datetime(int(token), 1, 1, tzinfo=UTC)
    if code == "Q":
        return datetime(int(token[:4]), 3 * int(token[5]) - 2, 1, tzinfo=UTC)
    if code == "M":
        return datetime(int(token[:4]), int(token[4:6]), 1, tzinfo=UTC)
    if code == "H":
        return datetime(int(token[:4]), int(token[4:6]), int(token[6:8]), int(token[9:11]), tzinfo=UTC)
    raise ValueError(f"frequency {code!r} is not handled by this pipeline")


@dlt.resource(
    name=TABLE,
    write_disposition="merge",
    primary_key=("series_id", "period"),
    columns={
        "series_id": {"data_type": "text", "nullable": False},
        "period": {"data_type": "timestamp", "nullable": False},
        "value": {"data_type": "double", "nullable": True},
    },
)
def observations(archives: list[Path]) -> Iterator[dict[str, Any]]:
    for archive in archives:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                with zf.open(name) as member:
                    for line in member:
                        series = json.loads(line)
                        if "series_id" not in series or not series.get("data"):
                            continue  # a category line, or a series without data
                        series_id, code = series["series_id"], series["f"]
                        for token, value in series["data"]:
                            yield {"series_id": series_id, "period": period_start(token, code), "value": value}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archives", type=Path, nargs="+")
    parser.add_argument("--credentials", required=True, help="PostgreSQL URL")
    parser.add_argument("--loader-file-format", choices=["csv", "insert_values"], default="insert_values")
    parser.add_argument("--pipelines-dir", type=Path, required=True)
    args = parser.parse_args()

    started = time.perf_counter()
    pipeline = dlt.pipeline(
        pipeline_name="eia_bulk_bench",
        destination=dlt.destinations.postgres(credentials=args.credentials),
        dataset_name=DATASET,
        pipelines_dir=str(args.pipelines_dir),
    )
    info = pipeline.run(observations(args.archives), loader_file_format=args.loader_file_format)
    info.raise_on_failed_jobs()
    trace = pipeline.last_trace
    steps = {
        step.step: round((step.finished_at - step.started_at).total_seconds(), 2)
        for step in (trace.steps if trace is not None else [])
        if step.finished_at is not None
    }
    run_s = round(time.perf_counter() - started, 2)
    print(json.dumps({"table": f"{DATASET}.{TABLE}", "steps_s": steps, "run_s": run_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
