"""Fixtures for the catalog tests: the flow fixtures (blocks, stand-in, Prefect, PostgreSQL) reused."""

from __future__ import annotations

from tests.flows.conftest import Setup, eia_server, setup, standin  # noqa: F401 (fixtures reused)
