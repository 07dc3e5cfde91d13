"""`python -m tasks.standin`: the EIA stand-in on a local port, for a local work pool or a manual try.

Serves EIA API v2 (`/v2/...`) and the bulk site (`/bulk/...`) from the real samples plus the demo's
synthetic series, until Ctrl-C. Point the pipeline at it with EIA_API_URL and EIA_BULK_URL (printed at
start) and any non-empty EIA_API_KEY: the stand-in checks that a key is present, not which one.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from rich.console import Console
from rich.table import Table

from tasks.standin.data import default_demo_dataset
from tasks.standin.server import EiaReplayServer, FaultPlan


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tasks.standin",
        description="Serve a local stand-in for EIA API v2 and the EIA bulk download site, built from real EIA "
        "samples, until Ctrl-C. It prints the URLs to set as EIA_API_URL and EIA_BULK_URL.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port to listen on; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS", help="delay every API answer")
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="answer this share of data requests with HTTP 500",
    )
    parser.add_argument(
        "--reorder",
        action="store_true",
        help="return tied and unsorted rows in a new order on every request, as EIA may",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    faults = FaultPlan(latency_s=args.latency, error_rate=args.error_rate, reorder=args.reorder, seed=args.seed)
    dataset = default_demo_dataset()
    console = Console(highlight=False, emoji=False, markup=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EiaReplayServer(dataset, host=args.host, port=args.port, faults=faults) as server:
        # The URLs first, one `NAME=value` line each and never wrapped: a shell can take them from a
        # log (`eval "$(grep ^EIA_ log)"` style), and `eia init` reads these very variables into block
        # eia-endpoints (fields api_url and bulk_url).
        console.print(f"EIA stand-in listening on {server.base_url}", soft_wrap=True)
        console.print(f"EIA_API_URL={server.api_url}", soft_wrap=True)
        console.print(f"EIA_BULK_URL={server.bulk_url}", soft_wrap=True)
        table = Table(title="EIA stand-in", show_header=False)
        table.add_row("API v2 (EIA_API_URL, block field api_url)", server.api_url)
        table.add_row("bulk site (EIA_BULK_URL, block field bulk_url)", f"{server.bulk_url}/manifest.txt")
        table.add_row("routes", ", ".join(sorted(dataset.routes)))
        table.add_row("series ids", ", ".join(sorted(dataset.seriesid)))
        table.add_row("bulk datasets", ", ".join(sorted((dataset.bulk_manifest or {}).get("dataset", {}))))
        table.add_row("EIA_API_KEY", "any non-empty value (checked for presence only)")
        console.print(table)
        console.print("serving until Ctrl-C")
        sys.stdout.flush()  # redirected to a log, stdout is block-buffered: the URLs must be there now
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
