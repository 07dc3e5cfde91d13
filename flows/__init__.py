"""Prefect flows and the `eia` command line: orchestration only, no SQL and no HTTP here."""
