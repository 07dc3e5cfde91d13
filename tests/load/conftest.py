"""Fixtures for the load tests: the unit-table fixture and the flow fixtures the quality tests use."""

from tests.quality.conftest import add_units, eia_server, setup, standin  # noqa: F401  (shared fixtures)
