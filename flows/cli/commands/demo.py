"""`eia demo`: the offline demo (see `flows/cli/demo.py`), as a top-level command of `eia`.

In a terminal it keeps the services up until Ctrl-C, so the Prefect UI and /metrics can be explored;
elsewhere (CI, pipes) it exits after the summary, with a non-zero code if anything failed.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

app = typer.Typer()  # no NAME: `demo` is a top-level command


@app.command()
def demo(
    keep_serving: Annotated[
        bool | None,
        typer.Option(
            "--keep-serving/--no-keep-serving",
            help="Keep the Prefect server, EIA stand-in and collector up until Ctrl-C "
            "(default: yes in a terminal, no otherwise).",
        ),
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Start from an empty demo directory.")] = False,
) -> None:
    """Run the whole pipeline offline: no API key, no internet, nothing of your real settings touched."""
    from flows.cli.demo import exec_demo

    if keep_serving is None:
        keep_serving = sys.stdin.isatty() and sys.stdout.isatty()
    exec_demo(keep_serving=keep_serving, reset=reset)
