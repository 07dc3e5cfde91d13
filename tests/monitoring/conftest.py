"""Fixtures for monitoring: a running collector service, fixture histories written as real rows."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from pydantic import SecretStr

from blocks import (
    COST_POLICY_BLOCK,
    DATABASE_BLOCK,
    ENDPOINTS_BLOCK,
    KAFKA_BLOCK,
    EiaCostPolicy,
    EiaDatabase,
    EiaEndpoints,
    EiaKafka,
)
from tasks.monitoring.collector import CollectorSettings, create_app
from tests.flows.conftest import Setup, eia_server, setup, standin  # noqa: F401 (fixtures reused)
from tests.support.services import free_port

ADMIN_TOKEN = "admin-token-5d1c8e7f2a9b4c3d"  # noqa: S105 (a test token)


class RunningCollector:
    """The collector's Starlette app under uvicorn on a free port, in a thread."""

    def __init__(self, settings: CollectorSettings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="collector", daemon=True)

    def __enter__(self) -> RunningCollector:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the collector did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=15)

    def post(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, headers=headers or {}, timeout=15)


@contextmanager
def running_collector(dsn: str, tenant_id: str = "aurum-prod", **settings: Any) -> Iterator[RunningCollector]:
    options: dict[str, Any] = {"admin_token": ADMIN_TOKEN, **settings}
    with RunningCollector(CollectorSettings(dsn=dsn, tenant_id=tenant_id, **options)) as collector:
        yield collector


@pytest.fixture
async def monitor_blocks(prefect_server: None, db: str) -> AsyncIterator[str]:
    """Blocks pointing the monitoring flows at the test database (no EIA needed); default cost policy after."""
    await EiaEndpoints().save(ENDPOINTS_BLOCK, overwrite=True)
    await EiaDatabase(dsn=SecretStr(db)).save(DATABASE_BLOCK, overwrite=True)
    await EiaKafka().save(KAFKA_BLOCK, overwrite=True)
    await EiaCostPolicy().save(COST_POLICY_BLOCK, overwrite=True)
    yield db
    await EiaCostPolicy().save(COST_POLICY_BLOCK, overwrite=True)


def write_catalog(tmp: Path, entries: list[dict[str, Any]], series_ids: list[str] | None = None) -> str:
    import json

    path = tmp / "catalog.json"
    path.write_text(json.dumps({"version": "test", "entries": entries, "series_ids": series_ids or []}))
    return str(path)


def insert_observations(
    dsn: str, series_id: str, *, dataset: str, frequency: str, periods: list[tuple[datetime, datetime, str]]
) -> None:
    """Observation rows as the loader leaves them: (period start, period end, raw token) each."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        starts = [p[0] for p in periods]
        conn.execute("SELECT eia_ensure_partitions(%s, %s)", (min(starts), max(starts)))
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO eia_series_timeseries (tenant_id, series_id, period, period_end, raw_period,
                       frequency, value, raw_value, source, dataset, ingest_ts, ingest_batch_id)
                   VALUES ('aurum-prod', %s, %s, %s, %s, %s, 1.0, '1.0', 'eia-api-v2', %s, 0, 'fixture')""",
                [(series_id, start, end, raw, frequency, dataset) for start, end, raw in periods],
            )


def months(first: datetime, count: int, skip: tuple[int, ...] = ()) -> list[tuple[datetime, datetime, str]]:
    """`count` monthly periods from `first`, leaving out the indexes in `skip`."""
    out = []
    for i in range(count):
        index = first.year * 12 + first.month - 1 + i
        start = first.replace(year=index // 12, month=index % 12 + 1)
        nxt = index + 1
        end = first.replace(year=nxt // 12, month=nxt % 12 + 1)
        if i not in skip:
            out.append((start, end, f"{start:%Y-%m}"))
    return out


def days(first: datetime, dates: list[int]) -> list[tuple[datetime, datetime, str]]:
    """Daily periods at first + each offset in days."""
    out = []
    for offset in dates:
        start = first + timedelta(days=offset)
        out.append((start, start + timedelta(days=1), f"{start:%Y-%m-%d}"))
    return out
