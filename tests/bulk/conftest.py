"""Fixtures for bulk runs: the EIA stand-in serving bulk archives, blocks pointing at it, and helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prefect import State

from flows.bulk import BulkRunResult, bulk_run_result, ingest_eia_bulk
from tests.bulk.synthetic import manifest
from tests.flows.conftest import Setup, eia_server, setup, standin  # noqa: F401  (fixtures, re-exported)

STAMP = "2024-08-23T15:23:15-04:00"


@dataclass
class Bulk:
    setup: Setup
    work_dir: Path

    @property
    def dsn(self) -> str:
        return self.setup.dsn

    @property
    def stats(self) -> Any:
        return self.setup.server.stats

    def serve(self, archives: dict[str, bytes], stamps: dict[str, str] | None = None) -> None:
        """The stand-in's manifest lists exactly these datasets ({code: zip bytes})."""
        dataset = self.setup.server.dataset
        dataset.bulk_manifest = manifest({code: (stamps or {}).get(code, STAMP) for code in archives})
        dataset.bulk_files = {f"{code}.zip": content for code, content in archives.items()}

    async def run(self, *datasets: str, **params: Any) -> tuple[State[Any], BulkRunResult]:
        state: State[Any] = await ingest_eia_bulk(
            datasets=list(datasets), work_dir=str(self.work_dir), progress=False, return_state=True, **params
        )
        result = bulk_run_result(state)
        assert result is not None, state
        return state, result

    def scalar(self, sql: str, *params: Any) -> Any:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(sql, params).fetchone()
        assert row is not None
        return row[0]

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
async def bulk(setup: Setup, tmp_path: Path) -> Bulk:  # noqa: F811  (the re-exported fixture)
    return Bulk(setup, tmp_path / "bulk")
