"""The top floor: the Prefect flows, and the `eia` command line that runs and operates them.

What it does: `series` (ingest_eia_series_timescale), `bulk` (ingest_eia_bulk), `cost`
(eia_cost_monitoring) and `monitoring` (the four monitors) are the deployments of prefect.yaml; each
reads like the runbook and calls the use cases' tasks. `_run` is the one run start and run end of the
ingestion flows; `settings` turns Prefect Blocks into the plain settings tasks receive (failing fast,
naming the setting). `cli` is the `eia` command.

What it never does: SQL or HTTP of its own; that is the floors below.
"""
