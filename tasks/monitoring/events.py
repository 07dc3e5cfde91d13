"""Prefect events for threshold crossings, so a Prefect automation can notify someone.

Why it exists: every monitor reports crossings the same way. One event per crossing:
`eia.monitor.breached` when a check goes bad, `eia.monitor.recovered` when it is good again. The
resource names the check (`eia.check.<monitor>.<check>`) and carries labels an automation can
match on: `eia.monitor`, `eia.check`, `eia.severity`, `eia.tenant`. The payload holds the value,
the threshold and a readable message (no secrets reach here; text is scrubbed anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect.events import emit_event

from tasks.core.redact import scrub
from tasks.monitoring.checks import Transition


def resource_for(monitor: str, check: str, severity: str, tenant_id: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"eia.check.{monitor}.{check}",
        "prefect.resource.name": f"{monitor}: {check}",
        "eia.monitor": monitor,
        "eia.check": check,
        "eia.severity": severity,
        "eia.tenant": tenant_id,
    }


def event_payload(t: Transition) -> dict[str, Any]:
    c = t.check
    return scrub(
        {
            "state": c.state,
            "value": c.value,
            "threshold": c.threshold,
            "message": c.message,
            "details": dict(c.details),
        }
    )


def emit_transitions(
    monitor: str, tenant_id: str, changes: Sequence[Transition], related: Sequence[dict[str, str]] = ()
) -> list[str]:
    """Emits one event per crossing; returns `event name: check` for each (for the run's report)."""
    emitted: list[str] = []
    for t in changes:
        emit_event(
            event=t.event,
            resource=resource_for(monitor, t.check.name, t.check.severity, tenant_id),
            related=list(related) or None,
            payload=event_payload(t),
        )
        emitted.append(f"{t.event}: {t.check.name}")
    return emitted
