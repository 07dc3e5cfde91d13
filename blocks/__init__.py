"""Prefect Blocks: configuration and secrets only."""
