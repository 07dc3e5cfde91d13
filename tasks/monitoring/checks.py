"""A monitor's checks and their state changes: the unit every monitoring flow reports and alerts on.

Why it exists: the four monitors each reduce what they measured to named checks (value, threshold,
breached or not). A Prefect event is emitted when a check *crosses* its threshold (ok → breached,
and breached → ok as a recovery), not on every run while it stays breached, so an automation
notifies once per incident. The previous state is durable (`eia_monitor_checks`), because every
monitor run is a fresh pod.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Severity = Literal["info", "warning", "critical"]
Change = Literal["breached", "recovered"]

EVENT_BREACHED: Final = "eia.monitor.breached"
EVENT_RECOVERED: Final = "eia.monitor.recovered"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    breached: bool
    severity: Severity
    value: float | None
    threshold: float | None
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return "breached" if self.breached else "ok"


@dataclass(frozen=True, slots=True)
class Transition:
    check: Check
    change: Change

    @property
    def event(self) -> str:
        return EVENT_BREACHED if self.change == "breached" else EVENT_RECOVERED


def transitions(previous: Mapping[str, str], checks: Sequence[Check]) -> list[Transition]:
    """State changes against the stored states (`name -> ok|breached`); a new check starts as ok."""
    changes: list[Transition] = []
    for check in checks:
        before = previous.get(check.name, "ok")
        if check.breached and before != "breached":
            changes.append(Transition(check, "breached"))
        elif not check.breached and before == "breached":
            changes.append(Transition(check, "recovered"))
    return changes


def threshold_check(
    name: str,
    value: float | None,
    threshold: float,
    *,
    above: bool,
    severity: Severity,
    message: str,
    inclusive: bool = False,
    details: Mapping[str, Any] | None = None,
) -> Check:
    """Breached when value is above (or below) the threshold; a missing value never breaches."""
    if value is None:
        breached = False
    elif above:
        breached = value >= threshold if inclusive else value > threshold
    else:
        breached = value <= threshold if inclusive else value < threshold
    return Check(name, breached, severity, value, threshold, message, dict(details or {}))
