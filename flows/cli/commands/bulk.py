"""`eia run bulk`: run the bulk flow locally, one line per dataset, non-zero exit on failure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # Prefect is imported when a command runs, after its settings can be reported
    from prefect import State


def register_run(run_app: typer.Typer) -> None:
    """Adds `bulk` to `eia run` (called by flows/cli/app.py when it mounts the command modules)."""

    @run_app.command("bulk")
    def run_bulk(
        dataset: Annotated[
            list[str] | None,
            typer.Option("--dataset", "-d", help="Bulk dataset code, e.g. ELEC (repeatable). Default: the runbook's."),
        ] = None,
        batch_size: Annotated[int, typer.Option(help="Observations per gated and checkpointed batch.")] = 50_000,
        max_batches: Annotated[
            int | None, typer.Option(help="Stop after this many batches; the next run resumes.")
        ] = None,
        force: Annotated[bool, typer.Option(help="Reload datasets whose version is already loaded.")] = False,
        allow_host: Annotated[
            list[str] | None, typer.Option(help="Extra host archive URLs may point to (repeatable).")
        ] = None,
        work_dir: Annotated[str | None, typer.Option(help="Download directory (default: <EIA_DATA_DIR>/bulk).")] = None,
        progress: Annotated[
            bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal).")
        ] = None,
    ) -> None:
        """Run ingest_eia_bulk locally; exits non-zero when a dataset fails."""
        from flows.bulk import bulk_run_result, ingest_eia_bulk
        from flows.cli.app import _run, error, out, preflight_run

        async def run() -> State[Any]:
            state: State[Any] = await ingest_eia_bulk(
                datasets=dataset,
                batch_size=batch_size,
                max_batches=max_batches,
                force=force,
                allowed_hosts=allow_host,
                work_dir=work_dir,
                progress=progress,
                return_state=True,
            )
            return state

        preflight_run(need_api_key=False)  # the bulk site is public: no API key needed
        state = _run(run)
        result = bulk_run_result(state)
        if result is not None:
            for r in result.datasets:
                c = r.counts
                out.print(
                    f"{r.dataset}: {r.status} (version {r.version or '-'}): {c.inserted} inserted, "
                    f"{c.updated} updated, {c.unchanged} unchanged, {c.quarantined} quarantined, "
                    f"{c.skipped} skipped from {c.received} observations ({r.lines} archive lines) "
                    f"in {r.batches} batches, {r.duration_s:.1f} s",
                    soft_wrap=True,  # one line per dataset, whatever the terminal width: scripts parse it
                )
        if not state.is_completed():
            error(state.message or "the run did not complete", label="run failed:")
            raise typer.Exit(1)
