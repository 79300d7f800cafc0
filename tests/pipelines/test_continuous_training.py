"""The continuous-training pipeline as compiled for both targets: the training tasks, then deploy only for a
new version (from push's typed output), rollout only for a canary; the monitoring pipeline retrains through it.

The runs themselves: ``test_continuous_training_local.py`` (kfp.local against a fake cluster).
"""

import inspect

import pytest
import yaml

from kfpkit.pipelines import continuous_training, targets
from kfpkit.pipelines.platforms import TARGETS


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled")
    paths = {}
    for pipeline in ("training", "continuous-training", "monitoring"):
        for target in TARGETS:
            with open(targets.compile_pipeline(pipeline, target, str(out)), encoding="utf-8") as fh:
                paths[(pipeline, target)] = next(yaml.safe_load_all(fh))
    return paths


def _walk(spec, dag=None, conditions=()):
    """``(task name, task, conditions)`` of every task and group under ``dag`` (default the root), with the
    trigger conditions of the groups around it (innermost first) and its own, if any, first."""
    dag = dag or spec["root"]["dag"]
    for name, task in dag["tasks"].items():
        own = task.get("triggerPolicy", {}).get("condition")
        around = ((own,) if own else ()) + conditions
        yield name, task, around
        component = spec["components"][task["componentRef"]["name"]]
        if "dag" in component:
            yield from _walk(spec, component["dag"], around)


def _task(spec, name):
    """The one task called ``name`` and its conditions (innermost first)."""
    (found,) = [(task, list(conditions)) for task_name, task, conditions in _walk(spec) if task_name == name]
    return found


def _artifact_sources(spec, key):
    """What every group passing the channel ``key`` down got it from (``taskOutputArtifact``s)."""
    return [
        task["inputs"]["artifacts"][key]["taskOutputArtifact"]
        for _name, task, _conditions in _walk(spec)
        if "taskOutputArtifact" in task.get("inputs", {}).get("artifacts", {}).get(key, {})
    ]


@pytest.mark.parametrize("target", TARGETS)
def test_continuous_training_takes_every_training_parameter_with_its_type_default_and_description(compiled, target):
    training = compiled[("training", target)]["root"]["inputDefinitions"]["parameters"]
    ct = compiled[("continuous-training", target)]["root"]["inputDefinitions"]["parameters"]

    def without_description(spec):
        return {k: v for k, v in (spec or {}).items() if k != "description"}

    assert {name: without_description(ct.get(name)) for name in training} == {
        name: without_description(spec) for name, spec in training.items()
    }
    # the same descriptions, but where the model also names the InferenceService and the registry is remote
    reworded = {"registry_root", "model_name"}
    assert {n: ct[n]["description"] for n in set(training) - reworded} == {
        n: training[n]["description"] for n in set(training) - reworded
    }
    assert set(ct) - set(training) >= {"prometheus_url", "namespace", "canary_percent", "deploy_new_version"}


def test_a_training_parameter_missing_from_continuous_training_is_named_when_the_pipeline_is_built(monkeypatch):
    monkeypatch.setattr(continuous_training, "TRAINING_PARAMETERS", (*continuous_training.TRAINING_PARAMETERS, "x"))
    with pytest.raises(TypeError, match=r"lacks the training pipeline's parameters \['x'\]"):
        continuous_training.build_continuous_training_pipeline()


@pytest.mark.parametrize("target", TARGETS)
def test_deploy_takes_pushs_typed_output_and_runs_only_for_a_new_version(compiled, target):
    spec = compiled[("continuous-training", target)]
    deploy, conditions = _task(spec, "deploy")
    assert set(deploy["inputs"]["artifacts"]) == {"pushed_model"}
    assert not {"model_uri", "model_version", "content_sha256"} & set(deploy["inputs"].get("parameters", {}))
    assert deploy["inputs"]["parameters"]["isvc_name"]["componentInputParameter"].endswith("model_name")
    # the artifact comes from push, passed down through the condition groups around deploy
    assert _artifact_sources(spec, "pipelinechannel--push-pushed_model") == [
        {"outputArtifactKey": "pushed_model", "producerTask": "push"}
    ]
    assert conditions[:2] == [
        "inputs.parameter_values['pipelinechannel--push-created'] == true",
        "inputs.parameter_values['pipelinechannel--deploy_new_version'] == true",
    ]
    _push, push_conditions = _task(spec, "push")
    assert conditions[2:] == push_conditions  # inside push's own conditions (valid, blessed, serves)
    _rollout, conditions = _task(spec, "rollout")
    assert conditions[:2] == [
        "inputs.parameter_values['pipelinechannel--deploy-canary_version'] != ''",
        "inputs.parameter_values['pipelinechannel--analyse_canary'] == true",
    ]
    _alert, conditions = _task(spec, "drift-alert")
    assert conditions[:2] == [
        "inputs.parameter_values['pipelinechannel--alert_webhook_url'] != ''",
        "inputs.parameter_values['pipelinechannel--deploy-canary_version'] != ''",
    ]
    assert _artifact_sources(spec, "pipelinechannel--rollout-record_json") == [
        {"outputArtifactKey": "record_json", "producerTask": "rollout"}
    ]


@pytest.mark.parametrize("target", TARGETS)
def test_monitoring_retrains_through_the_continuous_training_pipeline(compiled, target):
    spec = compiled[("monitoring", target)]
    retrain, conditions = _task(spec, "kfpkit-continuous-training")
    # retrain_decision combines drift and performance (retrain_on); an empty decision means no retrain
    assert conditions == ["inputs.parameter_values['pipelinechannel--retrain-decision-Output'] != ''"]
    passed = retrain["inputs"]["parameters"]
    for name in ("prometheus_url", "alert_webhook_url", "namespace", "deploy_new_version", "rollout_thresholds"):
        assert passed[name]["componentInputParameter"].endswith(name), name
    assert passed["source"]["componentInputParameter"].endswith("retrain_source")
    names = {task["componentRef"]["name"] for _name, task, _conditions in _walk(spec)}
    assert {"comp-push", "comp-deploy", "comp-rollout"} <= names


@pytest.mark.parametrize("pipeline", ["continuous-training", "monitoring"])
def test_deploy_and_rollout_use_the_targets_traffic_backend(compiled, pipeline):
    for target, backend in (("kubeflow", "kserve"), ("vertex", "vertex")):
        spec = compiled[(pipeline, target)]
        for name in ("deploy", "rollout"):
            parameters = _task(spec, name)[0]["inputs"]["parameters"]
            assert parameters["backend"] == {"runtimeValue": {"constant": backend}}, (target, name)
            endpoint = {"vertex_project", "vertex_location", "vertex_endpoint"}
            assert (endpoint <= set(parameters)) is (backend == "vertex"), (target, name)
        deploy = _task(spec, "deploy")[0]["inputs"]["parameters"]
        assert ("payload_log" in deploy) is (backend == "vertex")


def test_the_pipeline_function_lists_every_training_parameter_in_its_signature():
    ct = inspect.signature(continuous_training.continuous_training_pipeline).parameters
    assert all(name in ct for name in continuous_training.TRAINING_PARAMETERS)
