"""The push component: python_func with tmp-path artifacts, compilation and a kfp.local run."""

import json
import os

import pytest
import yaml
from kfp import compiler, dsl, local
from kfp.dsl import Artifact, Model, Output

from kfpkit.components.push.component import push
from kfpkit.components.push.logic import run_push
from kfpkit.core import model_dir as md
from kfpkit.core.registry import RegistryError, latest_blessed

MODEL = "fraud-detector"


def test_python_func_pushes_and_describes_the_version(tmp_path, make_model_dir, make_baseline):
    model = Model(uri=make_model_dir(tmp_path / "model"))
    baseline = Artifact(uri=make_baseline(tmp_path / "baseline"))
    pushed = Model(uri=str(tmp_path / "pushed_model"))  # KFP creates the folder of an output
    root = str(tmp_path / "registry")

    outputs = push.python_func(
        model=model, registry_root=root, model_name=MODEL, pushed_model=pushed, baseline=baseline
    )

    expected_uri = os.path.join(root, MODEL, "1")
    assert (outputs.model_uri, outputs.version, outputs.created) == (expected_uri, 1, True)
    with open(pushed.path, encoding="utf-8") as fh:
        pointer = json.load(fh)
    assert pointer == pushed.metadata
    assert pointer["model_uri"] == expected_uri and pointer["version"] == 1 and pointer["created"] is True
    assert pointer["content_sha256"] == latest_blessed(root, MODEL).content_sha256
    assert "baseline/schema.pbtxt" in md.verify_manifest(expected_uri)["files"]


def test_python_func_without_baseline_and_repeated_push_reports_created_false(tmp_path, make_model_dir):
    model = Model(uri=make_model_dir(tmp_path / "model"))
    root = str(tmp_path / "registry")
    first = push.python_func(
        model=model, registry_root=root, model_name=MODEL, pushed_model=Model(uri=str(tmp_path / "p1"))
    )
    second_artifact = Model(uri=str(tmp_path / "p2"))

    second = push.python_func(model=model, registry_root=root, model_name=MODEL, pushed_model=second_artifact)

    assert (first.model_uri, first.version, first.created) == (second.model_uri, second.version, True)
    assert second.created is False
    assert second_artifact.metadata["created"] is False
    assert not any(name.startswith("baseline") for name in md.verify_manifest(second.model_uri)["files"])


def test_bad_model_name_fails_and_writes_no_pointer_file(tmp_path, make_model_dir):
    pointer = tmp_path / "pushed"
    with pytest.raises(RegistryError, match="model_name 'Fraud_Model' is invalid"):
        run_push(make_model_dir(tmp_path / "model"), str(tmp_path / "reg"), "Fraud_Model", pointer_path=str(pointer))
    assert not pointer.exists()
    assert not (tmp_path / "reg").exists()


def test_component_compiles_with_an_optional_baseline_input(tmp_path):
    package = tmp_path / "push.yaml"
    compiler.Compiler().compile(push, str(package))
    spec = yaml.safe_load(package.read_text())
    inputs = spec["components"]["comp-push"]["inputDefinitions"]
    outputs = spec["components"]["comp-push"]["outputDefinitions"]

    assert inputs["artifacts"]["baseline"]["isOptional"] is True
    assert "isOptional" not in inputs["artifacts"]["model"]
    assert set(inputs["parameters"]) == {"registry_root", "model_name"}
    assert set(outputs["parameters"]) == {"model_uri", "version", "created"}
    assert outputs["parameters"]["version"]["parameterType"] == "NUMBER_INTEGER"
    assert outputs["parameters"]["created"]["parameterType"] == "BOOLEAN"
    assert set(outputs["artifacts"]) == {"pushed_model"}


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def _fake_train(model: Output[Model]):
    import os

    from kfpkit.core.model_card import ModelCard, write_model_card

    os.makedirs(model.path, exist_ok=True)
    card = ModelCard(
        framework="sklearn", model_file="model.skops", label_column="y", feature_order=["x"], decision_threshold=0.5
    )
    write_model_card(model.path, card)
    with open(os.path.join(model.path, "model.skops"), "wb") as fh:
        fh.write(b"weights")


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def _fake_baseline(baseline: Output[Artifact]):
    import os

    os.makedirs(baseline.path, exist_ok=True)
    with open(os.path.join(baseline.path, "schema.pbtxt"), "w") as fh:
        fh.write("feature {}\n")


@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
def test_component_runs_under_kfp_local_with_and_without_baseline(tmp_path):
    root = str(tmp_path / "registry")

    @dsl.pipeline
    def push_pipeline(registry_root: str) -> str:
        trained = _fake_train()
        without_baseline = push(model=trained.outputs["model"], registry_root=registry_root, model_name=MODEL)
        stats = _fake_baseline()
        with_baseline = push(
            model=trained.outputs["model"],
            registry_root=registry_root,
            model_name=MODEL,
            baseline=stats.outputs["baseline"],
        ).after(without_baseline)
        return with_baseline.outputs["model_uri"]

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "pipeline_root"))
    run = push_pipeline(registry_root=root)

    entry = latest_blessed(root, MODEL)
    assert run.output == entry.uri
    assert entry.version == 2
    assert "baseline/schema.pbtxt" not in md.verify_manifest(os.path.join(root, MODEL, "1"))["files"]
    assert "baseline/schema.pbtxt" in md.verify_manifest(entry.uri)["files"]
