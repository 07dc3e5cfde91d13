"""The alert rules: promtool checks and unit-tests them, the CRD is their copy, the dashboard uses real metrics."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tasks.monitoring.health import BULK_FLOW, SERIES_FLOW

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "infra" / "prometheus"
RULES = PROM / "eia-alerts.rules.yml"
UNIT_TESTS = PROM / "eia-alerts.test.yml"
# The "never ran" alerts' `for:` spans days: their tests are evaluated hourly, in a file of their own.
UNIT_TEST_FILES = (UNIT_TESTS, PROM / "eia-alerts-never-ran.test.yml")
CRD = ROOT / "infra" / "k8s" / "prometheus-rule.yaml"
DASHBOARD = ROOT / "infra" / "grafana" / "eia-dashboard.json"

# Every metric the collector can export (sample names), for checking rules and dashboard queries.
EXPORTED = {
    "eia_requests_total", "eia_errors_total", "eia_retries_total", "eia_response_bytes_total",
    "eia_request_duration_seconds_bucket", "eia_request_duration_seconds_sum", "eia_request_duration_seconds_count",
    "eia_requests_today", "eia_requests_this_hour", "eia_quota_used", "eia_quota_remaining", "eia_quota_limit",
    "eia_cost_usd", "eia_cost_projected_usd", "eia_budget_usd", "eia_budget_used_ratio",
    "eia_last_ingestion_timestamp_seconds", "eia_flow_runs_finished_total", "eia_flow_runs_stuck",
    "eia_quality_score", "eia_quality_checks", "eia_circuit_breaker_state", "eia_stale_series",
    "eia_staleness_check_timestamp_seconds", "eia_rows_received_total", "eia_rows_loaded_total",
    "eia_rows_quarantined_total", "eia_rows_skipped_total", "eia_outbox_pending_messages",
    "eia_outbox_oldest_age_seconds", "eia_collector_database_up", "eia_collector_scrape_duration_seconds",
    "eia_throttle_global_rate", "eia_throttle_worker_share",
}  # fmt: skip
RUNBOOK_ALERTS = {"EIAQuotaExceeded", "EIAHighCostRate", "EIAHighErrorRate", "EIALatencySpike", "EIADataStaleness",
                  "EIAQualityDrop"}  # fmt: skip
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`; CI installs it)"
)


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\beia_[a-z0-9_]+", expr))


def renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_prometheus_rule", PROM / "render_prometheus_rule.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_promtool
def test_promtool_accepts_the_rules_and_the_crd_copy(tmp_path: Path) -> None:
    checked = subprocess.run([str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
    spec_only = tmp_path / "crd-groups.yml"
    spec_only.write_text(yaml.safe_dump({"groups": yaml.safe_load(CRD.read_text())["spec"]["groups"]}))
    crd_check = subprocess.run([str(PROMTOOL), "check", "rules", str(spec_only)], capture_output=True, text=True)
    assert crd_check.returncode == 0, crd_check.stdout + crd_check.stderr


@needs_promtool
def test_promtool_unit_tests_fire_and_clear_every_alert() -> None:
    files = [str(f) for f in UNIT_TEST_FILES]
    result = subprocess.run([str(PROMTOOL), "test", "rules", *files], capture_output=True, text=True, cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for case in (c for f in UNIT_TEST_FILES for c in yaml.safe_load(f.read_text())["tests"]):
        for check in case["alert_rule_test"]:
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {r["alert"] for r in rules()}
    assert names - fired == set(), "alerts without a firing test"
    assert names - silent == set(), "alerts without a silent test"


def test_the_rules_cover_the_runbook_with_its_thresholds_in_correct_promql() -> None:
    by_name = {r["alert"]: r for r in rules()}
    assert set(by_name) >= RUNBOOK_ALERTS | {"EIABudgetWarning", "EIABudgetCritical", "EIACircuitBreakerOpen"}
    assert (
        "90000" in by_name["EIAQuotaExceeded"]["expr"] and "eia_requests_today" in by_name["EIAQuotaExceeded"]["expr"]
    )
    assert "increase(eia_requests_total[1h])" in by_name["EIAHighCostRate"]["expr"]
    assert "15000" in by_name["EIAHighCostRate"]["expr"]
    assert "rate(eia_errors_total[5m])" in by_name["EIAHighErrorRate"]["expr"]
    assert "histogram_quantile(0.95" in by_name["EIALatencySpike"]["expr"]
    assert "eia_request_duration_p95" not in RULES.read_text()
    assert "86400" in by_name["EIADataStaleness"]["expr"]
    assert "< 0.95" in by_name["EIAQualityDrop"]["expr"]
    assert ">= 0.70" in by_name["EIABudgetWarning"]["expr"] and ">= 0.85" in by_name["EIABudgetCritical"]["expr"]
    for name, rule in by_name.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        unknown = metric_names(str(rule["expr"])) - EXPORTED
        assert not unknown, f"{name} uses metrics the collector does not export: {unknown}"
        assert not re.search(r"\brate\(eia_requests_total\[1h\]\)", str(rule["expr"])), name


def test_the_prometheus_rule_crd_is_generated_from_the_rules_file() -> None:
    assert CRD.read_text() == renderer().render(), "run: python infra/prometheus/render_prometheus_rule.py"
    crd = yaml.safe_load(CRD.read_text())
    assert crd["kind"] == "PrometheusRule" and crd["apiVersion"] == "monitoring.coreos.com/v1"
    assert crd["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_the_dashboard_has_the_runbook_panels_and_queries_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    titles = " | ".join(p["title"].lower() for p in panels)
    for topic in (
        "requests",
        "error",
        "latency p95",
        "quota",
        "cost",
        "last successful ingestion",
        "quality",
        "circuit breaker",
    ):
        assert topic in titles, topic
    for panel in panels:
        for target in panel["targets"]:
            unknown = metric_names(target["expr"]) - EXPORTED
            assert not unknown, (panel["title"], unknown)


def test_the_flow_names_watched_are_the_flows_own_names() -> None:
    from flows.bulk import FLOW_NAME as BULK
    from flows.series import FLOW_NAME as SERIES

    assert (SERIES_FLOW, BULK_FLOW) == (SERIES, BULK)
    assert SERIES_FLOW in RULES.read_text() and BULK_FLOW in RULES.read_text()


# --- "never ran" ------------------------------------------------------------------------------------

NEVER_RAN = {  # flow -> (its staleness alert, its "never ran" alert, the least `for:`: its schedule's period)
    SERIES_FLOW: ("EIADataStaleness", "EIASeriesIngestionNeverRan", 24 * 3600),
    BULK_FLOW: ("EIABulkIngestionStale", "EIABulkIngestionNeverRan", 31 * 86400),
}


def seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", duration))


def test_a_flow_that_never_succeeded_exports_no_last_ingestion_sample() -> None:
    from tasks.monitoring.metrics import MetricsSnapshot, families

    snapshot = MetricsSnapshot(
        ledger=None,
        last_success={SERIES_FLOW: 1_764_000_000.0, BULK_FLOW: 0.0},  # 0: the read's "no completed run"
        finished_runs={},
        stuck_runs={},
        quality_latest=None,
        quality_window=None,
        quality_checks={},
        breakers={"eia-api": "closed"},
        stale_series=None,
        staleness_checked_at=None,
        rows={"received": 0, "loaded": 0, "quarantined": 0, "skipped": 0},
        outbox_pending=0,
        outbox_oldest_age_s=0.0,
    )
    [gauge] = [f for f in families(snapshot) if f.name == "eia_last_ingestion_timestamp_seconds"]
    assert [(s.labels, s.value) for s in gauge.samples] == [({"flow": SERIES_FLOW}, 1_764_000_000.0)]


def test_each_staleness_alert_has_a_never_ran_alert_of_its_own() -> None:
    by_name = {r["alert"]: r for r in rules()}
    for flow, (stale, never, least_for) in NEVER_RAN.items():
        selector = f'eia_last_ingestion_timestamp_seconds{{flow="{flow}"}}'
        assert selector in by_name[stale]["expr"] and "absent(" not in by_name[stale]["expr"], stale
        rule = by_name[never]
        # absent() of exactly that selector, only while the collector reads the database: a missing
        # collector or database has its own alert and is not "never ran".
        assert f"absent({selector})" in rule["expr"], never
        assert "and on() (max(eia_collector_database_up) == 1)" in rule["expr"], never
        assert seconds(rule["for"]) >= least_for, f"{never} would page a fresh install before its first run"
        assert "never succeeded" in rule["annotations"]["summary"], never
        assert "{{ $value" not in rule["annotations"]["description"], never  # absent()'s 1 means nothing


@needs_promtool
def test_the_freshness_panel_shows_never_for_a_flow_without_a_successful_run(tmp_path: Path) -> None:
    [panel] = [
        p for p in json.loads(DASHBOARD.read_text())["panels"] if "last successful ingestion" in p["title"].lower()
    ]
    mappings = panel["fieldConfig"]["defaults"]["mappings"]
    assert {v: o["text"] for m in mappings for v, o in m["options"].items()} == {"-1": "never"}
    exprs = [t["expr"] for t in panel["targets"]]
    # Evaluated by promtool on a collector that has seen a series run end 600 s before t = 10m and no bulk run.
    series = 'eia_last_ingestion_timestamp_seconds{flow="ingest_eia_series_timescale", instance="c:9090", job="j"}'
    cases = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'eia_collector_database_up{instance="c:9090", job="j"}', "values": "1x20"},
                    {"series": series, "values": "0x20"},
                ],
                "promql_expr_test": [
                    {
                        "expr": exprs[0],
                        "eval_time": "10m",
                        "exp_samples": [{"labels": f'{{flow="{SERIES_FLOW}"}}', "value": 600}],
                    },
                    {
                        "expr": exprs[1],
                        "eval_time": "10m",
                        "exp_samples": [{"labels": f'{{flow="{BULK_FLOW}"}}', "value": -1}],
                    },
                ],
            },
            {  # the collector cannot read the database: not "never", but no data
                "interval": "1m",
                "input_series": [{"series": 'eia_collector_database_up{instance="c:9090", job="j"}', "values": "0x20"}],
                "promql_expr_test": [{"expr": exprs[1], "eval_time": "10m", "exp_samples": []}],
            },
        ],
    }
    unit = tmp_path / "panel.test.yml"
    unit.write_text(yaml.safe_dump(cases, sort_keys=False))
    result = subprocess.run([str(PROMTOOL), "test", "rules", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert panel["fieldConfig"]["defaults"]["noValue"]
