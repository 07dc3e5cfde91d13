"""The `eia` command line: set-up, local runs, the runbook's operations, and the offline demo.

What it does: `flows.cli.app.app` is the Typer application and `main` its console script (`eia`). Sub-commands live
one area per module in `commands/` and are mounted by `app`; `setup` is `eia init` (migrations, blocks,
Prefect limits), `workpool` the Kubernetes work pool, `demo` the offline demo's process supervisor.
Expected faults print one line and exit 2; failed runs exit 1.

What it never does: hold pipeline logic. Commands call the flows and the use cases below them.
"""

__all__ = ["main"]


def main() -> None:
    """The `eia` console script. The command tree (`flows.cli.app.app`) is imported only here: importing
    the package must not import Prefect, so `python -m flows.cli.demo` can configure Prefect first."""
    from flows.cli.app import main as run

    run()
