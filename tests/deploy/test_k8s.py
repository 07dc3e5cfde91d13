"""The Kubernetes side without a cluster: the Job a worker would create, and every manifest in infra/k8s,
validated against the Kubernetes 1.30 API schemas (kubernetes-validate, strict: no unknown fields)."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any
from uuid import uuid4

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import Flow, FlowRun
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration, KubernetesWorkerVariables

from tests.deploy.spec import REPO, RESOURCES, TEMPLATE, flow_of, prefect_yaml, runbook_deployments

K8S_VERSION = "1.30"
K8S_DIR = REPO / "infra" / "k8s"
# prefect-kubernetes 0.8.0 requires these two keys in the pod spec of every Job template (its own
# default template has them there) although they are Job-level fields; the API server drops them.
PREFECT_POD_SPEC_KEYS = ("parallelism", "completions")
# Custom resources kubernetes-validate has no schema for; checked structurally below.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
HELM_VALUES = REPO / "infra" / "helm" / "prefect-worker-values.yaml"
# The prefect-worker chart's values.schema.json and defaults (infra/helm/prefect-worker-chart/README.md),
# copied from the shared reference, which a checkout outside the project's workspace may not have.
CHART_COPY = REPO / "infra" / "helm" / "prefect-worker-chart"
SHARED_CHART = REPO.parent / "shared" / "reference" / "prefect-worker-chart"
SECRET_REF_SUFFIXES = ("_SECRET_NAME", "_SECRET_KEY")


def template() -> dict[str, Any]:
    loaded = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def job_variables(flow: str) -> dict[str, Any]:
    [deployment] = [d for d in runbook_deployments(prefect_yaml()) if flow_of(d) == flow]
    variables = deployment["work_pool"]["job_variables"]
    assert isinstance(variables, dict)
    return variables


async def render_job(flow: str) -> dict[str, Any]:
    """The Job manifest the Kubernetes worker would submit for a run of `flow`'s deployment."""
    # No block or variable placeholders: the client is never called.
    client = PrefectClient("http://127.0.0.1:9/api")
    config = await KubernetesWorkerJobConfiguration.from_template_and_values(
        template(), job_variables(flow), client=client
    )
    run = FlowRun(id=uuid4(), flow_id=uuid4(), name="steady-otter")
    config.prepare_for_flow_run(flow_run=run, flow=Flow(id=run.flow_id, name=flow, labels={}))
    manifest: dict[str, Any] = config.job_manifest
    return manifest


def validate_strict(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    """Every manifest `kubectl apply -f infra/k8s/` applies, plus the Secret template (in templates/)."""
    docs = []
    for path in [*sorted(K8S_DIR.glob("*.yaml")), *sorted((K8S_DIR / "templates").glob("*.yaml"))]:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((path, doc))
    return docs


def test_the_template_keeps_every_variable_of_prefect_kubernetes_default() -> None:
    ours = template()["variables"]["properties"]
    default = KubernetesWorkerVariables.model_json_schema()["properties"]
    assert set(default) <= set(ours), set(default) - set(ours)
    defaults = {k: ours[k].get("default") for k in (*RESOURCES, "namespace", "finished_job_ttl")}
    assert defaults == {**RESOURCES, "namespace": "aurum-prod", "finished_job_ttl": 86400}


@pytest.mark.parametrize("flow", ["ingest_eia_series_timescale", "eia_quality_monitor"])
async def test_the_rendered_job_validates_and_has_the_runbook_resources(flow: str) -> None:
    job = await render_job(flow)
    pod = job["spec"]["template"]["spec"]
    for key in PREFECT_POD_SPEC_KEYS:
        assert pod.pop(key) == 1
    validate_strict(job)

    [container] = pod["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1000m", "memory": "2Gi"},
    }
    assert job["metadata"]["namespace"] == "aurum-prod"
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400
    assert job["spec"]["backoffLimit"] == 0
    assert container["image"] == job_variables(flow)["image"]
    assert container["envFrom"] == [{"secretRef": {"name": "eia-secrets"}}]
    assert pod["serviceAccountName"] == "eia-flow-runner"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # noqa: S108 (an emptyDir)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["EIA_ENVIRONMENT"] == "prod" and env["PREFECT__FLOW_RUN_ID"]
    assert container["args"][:3] == ["prefect", "flow-run", "execute"]


def test_every_manifest_in_infra_k8s_validates() -> None:
    docs = k8s_documents()
    kinds = {doc["kind"] for _, doc in docs}
    assert {"Deployment", "Service", "ServiceAccount", "NetworkPolicy", "Secret", "ServiceMonitor"} <= kinds
    # The flow-run Jobs' service account named in the work pool template exists here.
    flow_runner = template()["variables"]["properties"]["service_account_name"]["default"]
    assert by_kind("ServiceAccount", flow_runner)["automountServiceAccountToken"] is False
    for path, doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1", path
            continue
        try:
            validate_strict(doc)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{path.name} {doc['kind']}: {exc.message}") from None
        assert doc["metadata"]["namespace"] == "aurum-prod", path


def by_kind(kind: str, name: str = "eia-energy-collector") -> dict[str, Any]:
    [doc] = [d for _, d in k8s_documents() if d["kind"] == kind and (d["metadata"]["name"] == name or kind == "Secret")]
    return doc


def test_the_collector_runs_the_runbook_shape_non_root_with_secrets_by_reference_only() -> None:
    deployment = by_kind("Deployment")
    spec = deployment["spec"]
    assert deployment["metadata"]["name"] == "eia-energy-collector"
    assert spec["replicas"] == 3
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"] == ["eia", "serve"]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1000m", "memory": "2Gi"},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080}
    assert {(p["name"], p["containerPort"]) for p in container["ports"]} == {("http", 8080), ("metrics", 9090)}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False
    account = by_kind("ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    assert not [d for _, d in k8s_documents() if d["kind"] in {"Role", "ClusterRole", "RoleBinding"}]
    for env in container["env"]:
        assert "value" not in env or not any(w in env["name"] for w in ("KEY", "TOKEN", "PASSWORD", "DATABASE_URL"))
    secret = by_kind("Secret")
    for ref in (e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e):
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"], ref


def test_the_secret_template_holds_placeholders_only_and_is_never_applied_with_the_manifests() -> None:
    applied = [d for path in K8S_DIR.glob("*.yaml") for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert "Secret" not in {d["kind"] for d in applied}
    secret = by_kind("Secret")
    values = {**secret.get("stringData", {}), **secret.get("data", {})}
    assert values and all(v.startswith("REPLACE_ME") for v in values.values()), values


def helm_values() -> dict[str, Any]:
    loaded = yaml.safe_load(HELM_VALUES.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def chart_schema() -> dict[str, Any]:
    loaded = json.loads((CHART_COPY / "values.schema.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def coalesce(defaults: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The chart's defaults with the user's values over them, as Helm merges them before it validates:
    maps merge key by key, anything else replaces, and a null removes the default."""
    merged = dict(defaults)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = value
    return merged


def schema_errors(values: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(chart_schema())
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(values)]


def test_the_helm_values_validate_against_the_current_prefect_worker_chart_schema() -> None:
    values = helm_values()
    defaults = yaml.safe_load((CHART_COPY / "values.yaml").read_text(encoding="utf-8"))
    assert schema_errors(values) == []
    # What Helm validates on `helm upgrade --install`: the defaults, our file, and the --set-file template.
    installed = coalesce(defaults, values)
    installed["worker"]["config"]["baseJobTemplate"]["configuration"] = TEMPLATE.read_text(encoding="utf-8")
    assert schema_errors(installed) == []
    worker = installed["worker"]
    assert worker["apiConfig"] == "selfHostedServer"
    assert worker["selfHostedServerApiConfig"]["apiUrl"].endswith(":4200/api")
    # Auth from the Secret by name; the chart's placeholder authString is not used when existingSecret is set.
    assert worker["selfHostedServerApiConfig"]["basicAuth"] == {
        "enabled": True,
        "authString": defaults["worker"]["selfHostedServerApiConfig"]["basicAuth"]["authString"],
        "existingSecret": "prefect-api-auth",
    }
    assert "authString" not in values["worker"]["selfHostedServerApiConfig"]["basicAuth"]


def test_the_chart_schema_rejects_the_keys_it_renamed() -> None:
    old = {"worker": {"apiConfig": "server", "serverApiConfig": {"apiUrl": "http://prefect-server:4200/api"}}}
    errors = schema_errors(old)
    assert any("'serverApiConfig' was unexpected" in e for e in errors), errors
    assert any(e.startswith("worker.apiConfig: 'server' is not one of") for e in errors), errors


def test_the_chart_schema_copy_is_the_shared_reference_unchanged() -> None:
    if not SHARED_CHART.is_dir():
        pytest.skip(f"{SHARED_CHART} is not part of this checkout")
    for name in ("values.schema.json", "values.yaml"):
        assert (CHART_COPY / name).read_bytes() == (SHARED_CHART / name).read_bytes(), name


def test_the_helm_values_point_the_worker_at_the_pool_with_secrets_by_name_only() -> None:
    values = helm_values()
    worker = values["worker"]
    pools = {d["work_pool"]["name"] for d in prefect_yaml()["deployments"]}
    assert pools == {worker["config"]["workPool"]} and worker["config"]["type"] == "kubernetes"
    assert worker["config"]["baseJobTemplate"]["configuration"] is None  # filled by --set-file from TEMPLATE
    assert worker["image"]["prefectTag"].startswith(f"{version('prefect')}-python3.11-kubernetes")
    assert worker["cloudApiConfig"]["apiKeySecret"] == {"name": "prefect-api-key", "key": "key"}
    assert worker["cloudApiConfig"]["jobApiKeyPropagation"] == "secretRef"  # Jobs reference the Secret
    env = {e["name"]: e for e in worker["extraEnvVars"]}
    # The auth string reaches flow-run Jobs as a reference to the same Secret, never in clear.
    auth = worker["selfHostedServerApiConfig"]["basicAuth"]["existingSecret"]
    assert env["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_NAME"]["value"] == auth
    assert env["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_KEY"]["value"] == "auth-string"
    for name, entry in env.items():  # a literal value is never a credential: a flag or a Secret's name/key
        assert "valueFrom" in entry or entry["value"] in {"true", "false"} or name.endswith(SECRET_REF_SUFFIXES), entry
    assert worker["containerSecurityContext"]["readOnlyRootFilesystem"] is True
    assert "extraPermissions" not in values["role"]  # no access to Secrets: nothing creates one


def test_service_servicemonitor_and_networkpolicy_agree_with_the_collector() -> None:
    deployment, service, monitor, policy = (
        by_kind(k) for k in ("Deployment", "Service", "ServiceMonitor", "NetworkPolicy")
    )
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"metrics"}
    assert {p["name"] for p in service["spec"]["ports"]} == {"http", "metrics"}
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    [ingress] = policy["spec"]["ingress"]
    assert {p["port"] for p in ingress["ports"]} == {8080, 9090}
    assert all("namespaceSelector" in peer for peer in ingress["from"])
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
