"""Worker processes for the shared-budget tests: each one sends requests the way a series run does.

An `EiaClient` with the usage ledger's hooks and Prefect's global limits (`api_eia` slots and the
`api_eia_rate` burst guard on the real server), for a fixed time, on a route of its own so the
stand-in's arrival times tell the workers apart. Separate processes: importable top-level functions.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from prefect.settings import PREFECT_API_URL, temporary_settings

from tasks.eia.client import ClientSettings, EiaClient
from tasks.eia.requests import route_query
from tasks.quota.budget import CostPolicy
from tasks.quota.ledger import UsageLedger

# (route, frequency, data column, facets): one small answered request per worker.
ROUTES = {
    "a": ("electricity/retail-sales", "monthly", "price", {"stateid": ("US",), "sectorid": ("ALL",)}),
    "b": ("steo", "monthly", "value", {"seriesId": ("PATC_WORLD",)}),
}


def path_of(worker: str) -> str:
    """The stand-in's path of the worker's requests (its arrivals)."""
    return f"/v2/{ROUTES[worker][0]}/data/"


@dataclass(frozen=True)
class Job:
    api_url: str
    eia_api_url: str
    api_key: str
    dsn: str
    tenant: str
    policy: CostPolicy
    seconds: float
    rate: float = 2.0  # each client's configured rate (the endpoints block's default)
    burst: int = 1  # one request per limiter tick: the gaps show the rate the worker allows itself


def send_for(job: Job, worker: str, start: Barrier, results: Queue[Any]) -> None:
    """Sends one request after another for `job.seconds`, paced by the shared budget; reports how many."""
    route, frequency, column, facets = ROUTES[worker]
    path, params = route_query(route, frequency=frequency, data=[column], facets=facets, start=None, end=None)
    settings = ClientSettings(
        api_url=job.eia_api_url,
        api_key=job.api_key,
        requests_per_second=job.rate,
        burst=job.burst,
        max_rate_limit_waits=10,
    )

    async def run() -> int:
        async with (
            UsageLedger(job.dsn, job.tenant, job.policy, worker=f"worker-{worker}") as ledger,
            EiaClient(settings, reserve=ledger.reserve, on_request=ledger.record) as client,
        ):
            ledger.watch(client.limiter)
            start.wait(120)  # both imported and connected: they start together
            until = time.monotonic() + job.seconds
            while time.monotonic() < until:
                await client.get_json(path, params)
            return client.requests_sent

    with temporary_settings({PREFECT_API_URL: job.api_url}):
        results.put((worker, asyncio.run(run())))
