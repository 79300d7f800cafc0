"""manifests/: every kustomization renders with a real kustomize (kubectl's), validates against the Kubernetes
schemas (kubernetes-validate) and the KServe v0.20 CRD, passes checkov, and its PromQL passes promtool."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from tests import system_packages
from tests.manifests import kserve_schemas
from tests.manifests.kustomize import MANIFESTS, PORTABLE_FIELDS, kustomization_fields, render_all

# the kustomizations of a model's InferenceService, and the pipeline runner's identity
MODEL_KUSTOMIZATIONS = [
    "base",
    "overlays/serverless-canary",
    "overlays/standard-canary",
    "overlays/promote",
    "overlays/rollback",
]
KUSTOMIZATIONS = [*MODEL_KUSTOMIZATIONS, "pipeline-runner"]
BUILTIN_KINDS = {"ServiceAccount", "NetworkPolicy", "ConfigMap"}
RUNNER_KINDS = {"ServiceAccount", "Role", "RoleBinding"}
KUBERNETES_VERSION = "1.32.0"
CHECKOV = os.path.join(kserve_schemas.PROJECT_ROOT, ".venv-checkov", "bin", "checkov")


@pytest.fixture(scope="module")
def rendered():
    return render_all(KUSTOMIZATIONS)


def _isvc(docs):
    (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
    return isvc


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_kustomization_uses_only_fields_kustomize_v2_also_accepts(name):
    fields = kustomization_fields(name)
    assert fields <= PORTABLE_FIELDS, fields - PORTABLE_FIELDS


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_rendered_builtin_kinds_validate_against_the_kubernetes_schemas(rendered, name):
    import kubernetes_validate

    builtin = [
        d
        for d in rendered[name]
        if "." not in d["apiVersion"].split("/")[0]
        or d["apiVersion"].startswith("rbac.")
        or d["apiVersion"].startswith("networking.k8s.io")
    ]
    assert {d["kind"] for d in builtin} >= (RUNNER_KINDS if name == "pipeline-runner" else BUILTIN_KINDS)
    for doc in builtin:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", MODEL_KUSTOMIZATIONS)
def test_rendered_inference_service_validates_against_the_kserve_crd(rendered, name):
    errors = kserve_schemas.schema_errors(_isvc(rendered[name]), kserve_schemas.isvc_schema())
    assert not errors, errors


def test_overlays_express_canary_promote_and_rollback_per_mode(rendered):
    base = _isvc(rendered["base"])["spec"]["predictor"]
    assert "canaryTrafficPercent" not in base and base["labels"]["kfpkit.dev/model-version"] == "1"
    serverless = _isvc(rendered["overlays/serverless-canary"])["spec"]["predictor"]
    assert serverless["canaryTrafficPercent"] == 10 and serverless["labels"]["kfpkit.dev/model-version"] == "2"
    assert serverless["containers"][0]["env"][0] == {
        "name": "STORAGE_URI",
        "value": "gs://kfpkit-registry/fraud-detector/2",
    }
    digest = serverless["annotations"]["kfpkit.dev/content-sha256"]
    args = serverless["containers"][0]["args"]
    assert args[args.index("--expected-digest") + 1] == digest and args[args.index("--model-version") + 1] == "2"
    standard = _isvc(rendered["overlays/standard-canary"])
    assert standard["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert "canaryTrafficPercent" not in standard["spec"]["predictor"]  # Standard ignores it (kserve#5335)
    (canary,) = standard["spec"]["canary"]
    assert canary["trafficPercent"] == 10 and canary["predictor"]["name"] == "v2"
    promoted = _isvc(rendered["overlays/promote"])
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]
    assert promoted["metadata"]["annotations"]["kfpkit.dev/stable-version"] == "2"
    assert _isvc(rendered["overlays/rollback"])["spec"]["predictor"]["canaryTrafficPercent"] == 0


def test_every_predictor_image_carries_the_package_version(rendered):
    from kfpkit.components import images

    for name in MODEL_KUSTOMIZATIONS:
        spec = _isvc(rendered[name])["spec"]
        for predictor in [spec["predictor"]] + [c["predictor"] for c in spec.get("canary", [])]:
            assert predictor["containers"][0]["image"] == images.serving_image(), name


def test_runner_role_is_least_privilege_on_inference_services_in_one_namespace(rendered):
    docs = rendered["pipeline-runner"]
    (role,) = [d for d in docs if d["kind"] == "Role"]
    assert role["rules"] == [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "verbs": ["get", "watch", "create", "patch"],  # what deploy and rollout send: test_runner_rbac.py
        },
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]},
    ]
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding"]
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"] == "kfpkit"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "kfpkit"}
    ]


def test_the_model_kustomizations_grant_no_rbac(rendered):
    for name in MODEL_KUSTOMIZATIONS:
        assert not {d["kind"] for d in rendered[name]} & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def test_podmonitor_relabels_the_target_labels_the_rollout_queries_select(rendered):
    (monitor,) = [d for d in rendered["base"] if d["kind"] == "PodMonitor"]
    targets = {r["targetLabel"] for r in monitor["spec"]["podMetricsEndpoints"][0]["relabelings"]}
    assert targets == {"isvc", "model_version"}  # namespace comes from the operator


def test_checkov_reports_no_failed_checks(rendered, tmp_path):
    if not os.access(CHECKOV, os.X_OK):
        message = f"checkov not installed at {CHECKOV}: run `make setup-checkov`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    for name, docs in rendered.items():
        (tmp_path / (name.replace("/", "-") + ".yaml")).write_text(yaml.safe_dump_all(docs))
    result = subprocess.run(
        [CHECKOV, "-d", str(tmp_path), "--framework", "kubernetes", "-o", "json", "--quiet"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    skipped = [c for r in reports for c in r.get("results", {}).get("skipped_checks", [])]
    # stricter than "no HIGH failures": checkov reports no severities without a platform key, so none may fail
    assert not failed, [(c["check_id"], c["check_name"], c["resource"]) for c in failed]
    assert all(c.get("suppress_comment") for c in skipped), "every skipped check must say why"
    assert sum(r.get("summary", {}).get("passed", 0) for r in reports) > 0


def test_prometheus_rule_group_passes_promtool(rendered, tmp_path):
    promtool = system_packages.require("promtool")
    (rule,) = [d for d in rendered["base"] if d["kind"] == "PrometheusRule"]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rules found" in result.stdout


def dashboard_expressions():
    """The PromQL of every Grafana panel (``$namespace``/``$isvc`` left as variables)."""
    with open(os.path.join(MANIFESTS, "base", "grafana-dashboard.yaml"), encoding="utf-8") as fh:
        config_map = yaml.safe_load(fh)
    (text,) = config_map["data"].values()
    return [t["expr"] for panel in json.loads(text)["panels"] for t in panel["targets"]]


def rule_expressions():
    with open(os.path.join(MANIFESTS, "base", "prometheusrule.yaml"), encoding="utf-8") as fh:
        rule = yaml.safe_load(fh)
    return [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]


def test_dashboard_is_valid_json_with_a_panel_per_analysed_metric():
    exprs = dashboard_expressions()
    for metric in ("kfpkit_requests_total", "kfpkit_request_duration_seconds_bucket", "kfpkit_prediction_score_bucket"):
        assert any(metric in e for e in exprs), metric
