"""Fixtures for flow runs: the EIA stand-in, configured blocks and Prefect limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.system import Secret
from pydantic import SecretStr

from blocks import API_KEY_BLOCK, DATABASE_BLOCK, ENDPOINTS_BLOCK, KAFKA_BLOCK, EiaDatabase, EiaEndpoints, EiaKafka
from flows.cli.setup import ensure_limits
from tasks.standin.data import ReplayDataset
from tasks.standin.server import EiaReplayServer, FaultPlan

# Distinctive, so a leak anywhere is found by a plain substring search.
API_KEY = "SECRETKEY-7f3a9c2e1b8d4f6a0e5c3b9d7a1f2e4c"


@pytest.fixture(scope="session")
def eia_server() -> Iterator[EiaReplayServer]:
    with EiaReplayServer(ReplayDataset(routes={}, seriesid={})) as server:
        yield server


@pytest.fixture
def standin(eia_server: EiaReplayServer) -> EiaReplayServer:
    eia_server.dataset = ReplayDataset(routes={}, seriesid={})
    eia_server.faults = FaultPlan()
    eia_server.stats.reset()
    return eia_server


@dataclass
class Setup:
    dsn: str
    server: EiaReplayServer
    tmp: Path
    endpoints: dict[str, Any] = field(default_factory=dict)

    def catalog(self, entries: list[dict[str, Any]], series_ids: list[str] | None = None) -> str:
        path = self.tmp / "catalog.json"
        path.write_text(json.dumps({"version": "test", "entries": entries, "series_ids": series_ids or []}))
        return str(path)

    async def configure(
        self, *, kafka: tuple[str, str] | None = None, topics: dict[str, str] | None = None, **endpoint_overrides: Any
    ) -> None:
        """Saves the blocks; `kafka` = (bootstrap, registry URL), `topics` = EiaKafka topic fields to override."""
        settings: dict[str, Any] = {
            "api_url": self.server.api_url,
            "bulk_url": self.server.bulk_url,
            "requests_per_second": 200.0,
            "timeout_s": 5.0,
            "retry_base_delay_s": 0.05,
            "breaker_fail_max": 5,
            "breaker_reset_timeout_s": 30.0,
            **endpoint_overrides,
        }
        await EiaEndpoints(**settings).save(ENDPOINTS_BLOCK, overwrite=True)
        await EiaDatabase(dsn=SecretStr(self.dsn)).save(DATABASE_BLOCK, overwrite=True)
        bootstrap, registry = kafka or ("", "")
        await EiaKafka(bootstrap_servers=bootstrap, schema_registry_url=registry, **(topics or {})).save(
            KAFKA_BLOCK, overwrite=True
        )


@pytest.fixture
async def setup(prefect_server: None, db: str, standin: EiaReplayServer, tmp_path: Path) -> AsyncIterator[Setup]:
    await Secret(value=API_KEY).save(API_KEY_BLOCK, overwrite=True)
    await ensure_limits(slots=3, rate=1000.0, burst=50)
    s = Setup(db, standin, tmp_path)
    await s.configure()
    yield s
