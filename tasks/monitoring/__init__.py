"""The monitoring use case: the runbook's monitors and the collector service, from durable state.

What it does: pure verdicts with a fixed `now`, each unit-testable without a server or a clock:
ingestion health and stuck runs (`health`), quality over time (`quality`), staleness per series and
cadence (`staleness`), SLA/KPI objectives (`sla`), all as `Check`s whose threshold crossings become
`Transition`s (`checks`); `events` turns those into Prefect events. `store` reads and keeps what they need in
PostgreSQL. `collector` is `eia serve` (`/health`, `/ready`, `/metrics`, the audited admin reset), and
`metrics` exports every number from the database at scrape time. Its Prefect wrappers are
`tasks.monitoring.tasks`; the package itself, like its verdict modules, imports no Prefect.

What it never does: keep a number in process memory (pods are disposable), or change pipeline data;
it writes only its own snapshot tables.
"""

from tasks.monitoring import health, quality, sla, staleness
from tasks.monitoring.checks import Check, Transition, transitions

__all__ = ["Check", "Transition", "health", "quality", "sla", "staleness", "transitions"]
