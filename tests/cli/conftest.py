"""Fixtures for the `eia` command tests: one closed port, and the flow fixtures (blocks, stand-in) reused."""

from __future__ import annotations

import pytest

from tests.flows.conftest import Setup, eia_server, setup, standin  # noqa: F401 (fixtures reused)
from tests.support.services import free_port


@pytest.fixture(scope="session")
def closed_port() -> int:
    """A local port nothing listens on: a Prefect API or a database that is down."""
    return free_port()
