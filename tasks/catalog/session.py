"""The EIA client stack the catalog commands send through: the same one as the series flow's.

The shared circuit breaker, the tenant's usage ledger (quota reservation before each send, usage
counted after), then the client with its slot pool and rate limits. Discover, validate and plan
requests are EIA requests like any other: counted in the ledger, held to the quotas.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tasks.catalog.reader import MetadataReader
from tasks.eia.client import ClientSettings, EiaClient
from tasks.quota.breaker import shared_breaker
from tasks.quota.budget import CostPolicy
from tasks.quota.ledger import UsageLedger


@dataclass(frozen=True, slots=True)
class SessionSettings:
    dsn: str
    tenant_id: str
    client: ClientSettings
    cost: CostPolicy
    breaker_fail_max: int = 5
    breaker_reset_timeout_s: float = 60.0


@contextlib.asynccontextmanager
async def eia_session(settings: SessionSettings) -> AsyncIterator[MetadataReader]:
    """A metadata reader over a client guarded, paced and counted as in a series run."""
    with shared_breaker(
        settings.dsn, fail_max=settings.breaker_fail_max, reset_timeout_s=settings.breaker_reset_timeout_s
    ) as breaker:
        async with (
            UsageLedger(settings.dsn, settings.tenant_id, settings.cost) as ledger,
            EiaClient(settings.client, breaker, reserve=ledger.reserve, on_request=ledger.record) as client,
        ):
            ledger.watch(client.limiter)
            yield MetadataReader(client)
