"""Writes infra/k8s/prometheus-rule.yaml (PrometheusRule CRD) from infra/prometheus/eia-alerts.rules.yml.

Why it exists: the alert rules have one source of truth, the plain rules file that promtool checks and
unit-tests. The Prometheus Operator needs the same groups wrapped in a PrometheusRule; this script
wraps them, and tests/monitoring/test_alert_rules.py fails when the committed CRD differs from its
output. Run it after editing the rules: `python infra/prometheus/render_prometheus_rule.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "eia-alerts.rules.yml"
CRD = HERE.parent / "k8s" / "prometheus-rule.yaml"

HEADER = """\
# GENERATED from infra/prometheus/eia-alerts.rules.yml by infra/prometheus/render_prometheus_rule.py.
# Do not edit: change the rules file and rerun the script (a test fails when the two differ).
"""


def render(rules_text: str | None = None) -> str:
    groups = yaml.safe_load(rules_text if rules_text is not None else RULES.read_text(encoding="utf-8"))["groups"]
    crd: dict[str, Any] = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "eia-energy-alerts",
            "namespace": "aurum-prod",
            "labels": {"app": "eia-energy-collector", "role": "alert-rules"},
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(crd, sort_keys=False, width=120, allow_unicode=True)


def main() -> int:
    CRD.parent.mkdir(parents=True, exist_ok=True)
    CRD.write_text(render(), encoding="utf-8")
    print(f"wrote {CRD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
