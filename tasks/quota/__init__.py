"""Request control: every EIA request is reserved, paced by the quota, guarded and paid for.

- `reserve`: the atomic quota reservation before each request (`reserve_request`, `QuotaExhausted`);
- `ledger`: the write path, `UsageLedger`, the client's `reserve` and `on_request` hooks;
- `throttle`: dynamic throttling, the rule that spreads the rest of the daily quota;
- `status`: the read side, `quota_status` and `ledger_totals`; `reset`: `reset_quota`, audited;
- `breaker`: the circuit breaker shared by every process; `budget`: the cost arithmetic;
- `cost`: the cost-monitoring steps, wrapped as Prefect tasks in `tasks`.

quota/ never fetches or stores data: it decides whether a request may be sent and counts what it cost.
"""

from tasks.quota.breaker import (
    BreakerStatus,
    SharedBreaker,
    breaker_status,
    reset_breaker,
    seconds_until_trial,
    shared_breaker,
)
from tasks.quota.budget import CostPolicy, EffectiveLimits, effective_limits
from tasks.quota.cost import cost_events, cost_markdown, cost_table, resource_id
from tasks.quota.ledger import UsageLedger
from tasks.quota.reserve import LedgerUnavailable, Reservation, reserve_request
from tasks.quota.reset import QuotaReset, reset_quota
from tasks.quota.status import QuotaStatus, ledger_totals, quota_status

__all__ = [
    "BreakerStatus",
    "CostPolicy",
    "EffectiveLimits",
    "LedgerUnavailable",
    "QuotaReset",
    "QuotaStatus",
    "Reservation",
    "SharedBreaker",
    "UsageLedger",
    "breaker_status",
    "cost_events",
    "cost_markdown",
    "cost_table",
    "effective_limits",
    "ledger_totals",
    "quota_status",
    "reserve_request",
    "reset_breaker",
    "reset_quota",
    "resource_id",
    "seconds_until_trial",
    "shared_breaker",
]
