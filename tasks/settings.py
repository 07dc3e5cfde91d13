"""Plain run settings handed to tasks: resolved from Blocks by the flows, never loaded by tasks.

Keeping tasks free of Block loading means every task is testable with `task.fn(...)` and plain
values, without a Prefect server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.eia.client import ClientSettings
from tasks.ops.budget import CostPolicy
from tasks.publish.producer import KafkaSettings


@dataclass(frozen=True, slots=True)
class RetrySettings:
    retries: int = 4
    base_delay_s: float = 2.0
    jitter_factor: float = 0.5


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    fail_max: int = 5
    reset_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class RunSettings:
    dsn: str = field(repr=False)
    tenant_id: str
    retention_years: int
    client: ClientSettings
    kafka: KafkaSettings | None  # None: publishing is off
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    cost: CostPolicy = field(default_factory=CostPolicy)  # quotas, budget, alerts (block 'eia-cost-policy')
