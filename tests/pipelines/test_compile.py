"""Compiling the pipelines for Kubeflow and Vertex AI: golden files, loadability, platform settings, and the
wiring of the splits (the test split never reaches train)."""

import os

import pytest
import yaml

from kfpkit.pipelines import registry, targets
from kfpkit.pipelines.platforms import TARGETS
from tools import golden

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "golden")
COMPILED_NAMES = [f"{p}.{t}.yaml" for p in registry.pipeline_names() for t in TARGETS]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled")
    paths = targets.compile_all(str(out))
    return {os.path.basename(p): p for p in paths}


def _docs(path):
    with open(path, encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def _executor_of(spec, component):
    label = spec["components"][f"comp-{component}"]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]["container"]


def _dags(spec):
    """``{component name: dag}`` of the root and of every sub-DAG (``dsl.If`` and nested pipelines)."""
    dags = {"root": spec["root"]["dag"]}
    dags.update({name: c["dag"] for name, c in spec["components"].items() if "dag" in c})
    return dags


def _artifact_sources(spec, component):
    """``{input name: (producer task, output key)}`` of every task running ``comp-<component>``, with the
    inputs that sub-DAGs pass down (``componentInputArtifact``) followed up to the task that produced them."""
    dags = _dags(spec)
    caller = {}  # sub-DAG component -> (the DAG that calls it, the calling task)
    for dag_name, dag in dags.items():
        for task in dag["tasks"].values():
            if task["componentRef"]["name"] in dags:
                caller[task["componentRef"]["name"]] = (dag_name, task)

    def resolve(dag_name, source):
        if "taskOutputArtifact" in source:
            return source["taskOutputArtifact"]["producerTask"], source["taskOutputArtifact"]["outputArtifactKey"]
        if dag_name == "root":
            return "pipeline input", source["componentInputArtifact"]
        parent, task = caller[dag_name]
        return resolve(parent, task["inputs"]["artifacts"][source["componentInputArtifact"]])

    found = []
    for dag_name, dag in dags.items():
        for task in dag["tasks"].values():
            if task["componentRef"]["name"] == f"comp-{component}":
                artifacts = task.get("inputs", {}).get("artifacts", {})
                found.append({name: resolve(dag_name, source) for name, source in artifacts.items()})
    return found


def test_every_pipeline_compiles_for_every_target(compiled):
    assert set(compiled) == {f"{p}.{t}.yaml" for p in targets.pipeline_names() for t in ("kubeflow", "vertex")}


@pytest.mark.parametrize("name", COMPILED_NAMES)
def test_compiled_pipeline_matches_golden_file(compiled, name):
    with open(compiled[name], encoding="utf-8") as fh:
        fresh = golden.normalize(fh.read())
    golden_path = os.path.join(GOLDEN_DIR, name)
    assert os.path.exists(golden_path), f"missing {golden_path}: run `make golden`"
    with open(golden_path, encoding="utf-8") as fh:
        assert fresh == fh.read(), f"{name} differs from tests/golden: review the change, then `make golden`"


def test_every_golden_file_belongs_to_a_registered_pipeline_and_target():
    assert sorted(n for n in os.listdir(GOLDEN_DIR) if n.endswith(".yaml")) == sorted(COMPILED_NAMES)


@pytest.mark.parametrize("name", COMPILED_NAMES)
def test_compiled_pipeline_loads_back_with_kfp(compiled, name):
    from kfp import components

    loaded = components.load_component_from_file(compiled[name])
    assert loaded.name == _docs(compiled[name])[0]["pipelineInfo"]["name"]
    assert loaded.component_spec.inputs


def test_training_pipeline_loads_back_with_its_registry_parameter(compiled):
    from kfp import components

    loaded = components.load_component_from_file(compiled["training.kubeflow.yaml"])
    assert loaded.name == "kfpkit-training"
    assert "registry_root" in loaded.component_spec.inputs


def test_the_test_split_never_reaches_train_in_any_compiled_pipeline(compiled):
    checked = []
    for name in COMPILED_NAMES:
        trains = _artifact_sources(_docs(compiled[name])[0], "train")
        if name.startswith(("training.", "monitoring.", "continuous-training.")):
            assert trains, f"{name} has no train task"
        for sources in trains:
            assert ("ingest", "test_data") not in sources.values(), (name, sources)
            assert sources == {"train_data": ("ingest", "train_data"), "eval_data": ("ingest", "eval_data")}, name
            checked.append(name)
    assert checked


@pytest.mark.parametrize("target", TARGETS)
def test_training_pipeline_wires_validate_to_all_three_splits_and_evaluate_to_test_only(compiled, target):
    spec = _docs(compiled[f"training.{target}.yaml"])[0]
    (validate,) = _artifact_sources(spec, "validate")
    assert {name: validate[name] for name in ("train_data", "eval_data", "test_data")} == {
        split: ("ingest", split) for split in ("train_data", "eval_data", "test_data")
    }
    (evaluate,) = _artifact_sources(spec, "evaluate")
    assert evaluate == {"model": ("train", "model"), "test_data": ("ingest", "test_data")}
    (infra,) = _artifact_sources(spec, "infra-validate")
    assert infra["eval_data"] == ("ingest", "eval_data")
    evaluate_task = next(
        task
        for dag in _dags(spec).values()
        for task in dag["tasks"].values()
        if task["componentRef"]["name"] == "comp-evaluate"
    )
    max_ece = evaluate_task["inputs"]["parameters"]["max_ece"]
    assert max_ece["componentInputParameter"].endswith("max_ece")


def test_kubeflow_training_task_requests_a_gpu_with_toleration(compiled):
    spec, platform = _docs(compiled["training.kubeflow.yaml"])
    train = _executor_of(spec, "train")
    assert train["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert train["resources"]["accelerator"]["resourceCount"] == "1"
    assert train["resources"]["cpuLimit"] == 8.0
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    train_label = spec["components"]["comp-train"]["executorLabel"]
    tolerations = k8s[train_label]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations


def test_vertex_pipeline_is_one_document_with_a_vertex_accelerator(compiled):
    docs = _docs(compiled["training.vertex.yaml"])
    assert len(docs) == 1
    train = _executor_of(docs[0], "train")
    assert train["resources"]["accelerator"]["resourceType"] == "NVIDIA_L4"
    assert "nvidia.com/gpu" not in open(compiled["training.vertex.yaml"]).read()


def test_vertex_accelerator_is_configurable_and_typos_are_rejected(tmp_path):
    path = targets.compile_pipeline("training", "vertex", str(tmp_path), accelerator_type="NVIDIA_TESLA_T4")
    train = _executor_of(_docs(path)[0], "train")
    assert train["resources"]["accelerator"]["resourceType"] == "NVIDIA_TESLA_T4"
    with pytest.raises(ValueError, match="unknown Vertex accelerator 'NVIDIA_T4'"):
        targets.compile_pipeline("training", "vertex", str(tmp_path), accelerator_type="NVIDIA_T4")


def test_vertex_yaml_builds_an_aiplatform_pipeline_job_offline(compiled):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    job = aiplatform.PipelineJob(
        display_name="kfpkit-training-offline",
        template_path=compiled["training.vertex.yaml"],
        pipeline_root="gs://example-bucket/pipeline-root",
        parameter_values={"registry_root": "gs://example-bucket/registry", "framework": "sklearn"},
        project="example-project",
        location="us-central1",
        credentials=AnonymousCredentials(),
        enable_caching=False,
    )
    runtime = job._gca_resource.runtime_config
    assert runtime.gcs_output_directory == "gs://example-bucket/pipeline-root"
    assert runtime.parameter_values["framework"] == "sklearn"


@pytest.mark.parametrize("name", COMPILED_NAMES)
def test_pipeline_parameters_carry_descriptions_for_the_kubeflow_ui(compiled, name):
    params = _docs(compiled[name])[0]["root"]["inputDefinitions"]["parameters"]
    undocumented = [param for param, p in params.items() if not p.get("description")]
    assert not undocumented


def test_training_pipeline_split_and_gate_parameters_default_to_70_15_15_and_no_ece_ceiling(compiled):
    params = _docs(compiled["training.kubeflow.yaml"])[0]["root"]["inputDefinitions"]["parameters"]
    lift = params["min_pr_auc_lift"]
    assert lift["defaultValue"] == 5.0 and "positive rate" in lift["description"]
    assert params["min_pr_auc"]["defaultValue"] == 0.0 and "0: none" in params["min_pr_auc"]["description"]
    assert params["eval_fraction"]["defaultValue"] == 0.15 and params["test_fraction"]["defaultValue"] == 0.15
    assert params["max_ece"]["defaultValue"] == 0.0
    assert "test split" in params["max_ece"]["description"] and "0 disables" in params["max_ece"]["description"]
    assert "test split" in lift["description"]


def test_push_takes_the_model_evaluate_wrote_with_the_test_metrics_in_its_card(compiled):
    spec = _docs(compiled["training.kubeflow.yaml"])[0]
    tasks = {}
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    # push runs inside the blessed/serving conditions: its model is the sub-DAG's input channel of evaluate's output
    assert tasks["push"]["inputs"]["artifacts"]["model"] == {
        "componentInputArtifact": "pipelinechannel--evaluate-evaluated_model"
    }
    channels = [
        task["inputs"]["artifacts"]["pipelinechannel--evaluate-evaluated_model"]
        for task in tasks.values()
        if "pipelinechannel--evaluate-evaluated_model" in task.get("inputs", {}).get("artifacts", {})
    ]
    assert {"taskOutputArtifact": {"outputArtifactKey": "evaluated_model", "producerTask": "evaluate"}} in channels


def test_image_registry_override_rewrites_every_task_image(tmp_path):
    path = targets.compile_pipeline("training", "kubeflow", str(tmp_path), image_registry="registry.example.com/ml")
    spec = _docs(path)[0]
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images and all(i.startswith("registry.example.com/ml/kfpkit-") for i in images)


def test_unknown_target_and_pipeline_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown target 'sagemaker'"):
        targets.compile_pipeline("training", "sagemaker", str(tmp_path))
    with pytest.raises(ValueError, match="unknown pipeline 'scoring'"):
        targets.compile_pipeline("scoring", "kubeflow", str(tmp_path))
    assert not any(tmp_path.iterdir())


# What names the data and the model is required in every pipeline: a forgotten source must not train on the
# built-in sample and succeed.
REQUIRED_NAMES = {
    "training": {"registry_root", "source", "label_column", "model_name"},
    "monitoring": {
        "model_uri",
        "live_source",
        "registry_root",
        "retrain_source",
        "label_column",
        "model_name",
        "prometheus_url",
    },
    "continuous-training": {"registry_root", "source", "label_column", "model_name", "prometheus_url"},
    "deployment": {"model_uri", "content_sha256", "prometheus_url", "isvc_name"},
}


@pytest.mark.parametrize("name", registry.pipeline_names())
def test_every_pipeline_requires_its_data_and_model_names_and_defaults_to_no_demo_value(compiled, name):
    (spec, *_) = _docs(compiled[f"{name}.kubeflow.yaml"])
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    required = {p for p, d in parameters.items() if not d.get("isOptional") and "defaultValue" not in d}
    assert required == REQUIRED_NAMES[name]
    demo_values = ("synthetic://", "is_fraud", "fraud-detector")
    defaults = {p: d["defaultValue"] for p, d in parameters.items() if isinstance(d.get("defaultValue"), str)}
    assert {p: v for p, v in defaults.items() if any(demo in v for demo in demo_values)} == {}


def _condition_around(spec, component):
    """The trigger condition of the ``dsl.If`` group whose sub-DAG runs ``comp-<component>``."""
    dags = _dags(spec)
    (group,) = [
        n
        for n, dag in dags.items()
        if any(t["componentRef"]["name"] == f"comp-{component}" for t in dag["tasks"].values())
    ]
    (caller,) = [t for dag in dags.values() for t in dag["tasks"].values() if t["componentRef"]["name"] == group]
    return caller["triggerPolicy"]["condition"]


@pytest.mark.parametrize("target", TARGETS)
def test_monitoring_checks_performance_unless_retrain_on_is_drift_and_retrains_on_the_decision(compiled, target):
    spec = _docs(compiled[f"monitoring.{target}.yaml"])[0]
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters["retrain_on"]["defaultValue"] == "drift"
    assert parameters["performance_labels"]["defaultValue"] == []
    assert _condition_around(spec, "performance") == "inputs.parameter_values['pipelinechannel--retrain_on'] != 'drift'"
    assert _condition_around(spec, "performance-skipped").startswith("!(")
    decision = spec["root"]["dag"]["tasks"]["retrain-decision"]["inputs"]["parameters"]
    assert decision["drift_detected"]["taskOutputParameter"] == {
        "outputParameterKey": "Output",
        "producerTask": "monitor",
    }
    assert decision["degraded"]["taskOutputParameter"]["producerTask"].startswith("condition-branches")
    retrain_group = _condition_around(spec, "kfpkit-continuous-training")
    assert retrain_group == "inputs.parameter_values['pipelinechannel--retrain-decision-Output'] != ''"
