"""The fault suite runs flows against the same EIA stand-in, blocks and Prefect harness as tests/flows."""

from tests.flows.conftest import eia_server, setup, standin

__all__ = ["eia_server", "setup", "standin"]
