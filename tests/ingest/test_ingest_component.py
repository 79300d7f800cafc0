"""The ingest component: python_func with tmp-path artifacts, and a kfp.local run."""

import hashlib

import pandas as pd
import pytest
from kfp import dsl, local
from kfp.dsl import Dataset

from kfpkit.components.ingest.component import ingest
from kfpkit.components.ingest.errors import IngestError


def _artifacts(root):
    return {name: Dataset(uri=str(root / name)) for name in ("train_data", "eval_data", "test_data")}


def test_python_func_writes_the_three_datasets_and_sets_their_metadata(tmp_path):
    artifacts = _artifacts(tmp_path)
    ingest.python_func(
        source="synthetic://fraud?rows=4000&seed=4",
        label_column="is_fraud",
        **artifacts,
        eval_fraction=0.25,
        test_fraction=0.2,
        split_key_column="transaction_id",
        seed=2,
    )
    for name, artifact in artifacts.items():
        frame = pd.read_parquet(artifact.path)
        assert artifact.metadata["split"] == name.removesuffix("_data")
        assert artifact.metadata["rows"] == len(frame)
        assert artifact.metadata["sha256"] == hashlib.sha256(open(artifact.path, "rb").read()).hexdigest()
        assert artifact.metadata["split_key"] == "transaction_id"
        assert artifact.metadata["split_seed"] == 2
        assert artifact.metadata["eval_fraction"] == 0.25 and artifact.metadata["test_fraction"] == 0.2
        assert artifact.metadata["columns"]["is_fraud"] == "int64"
    rows = {name: artifact.metadata["rows"] for name, artifact in artifacts.items()}
    assert sum(rows.values()) == 4000
    assert 0.22 < rows["eval_data"] / 4000 < 0.28 and 0.17 < rows["test_data"] / 4000 < 0.23


def test_defaults_split_70_15_15():
    inputs = ingest.component_spec.inputs
    assert inputs["eval_fraction"].default == 0.15 and inputs["test_fraction"].default == 0.15
    assert set(ingest.component_spec.outputs) == {"train_data", "eval_data", "test_data"}


def test_python_func_with_bad_input_raises_and_leaves_no_files(tmp_path):
    (tmp_path / "t.csv").write_text("a,label\n1,0\n2,maybe\n3,1\n")
    artifacts = _artifacts(tmp_path / "out")
    with pytest.raises(IngestError, match="'maybe'"):
        ingest.python_func(source=str(tmp_path / "t.csv"), label_column="label", **artifacts)
    assert not (tmp_path / "out").exists()
    assert all(artifact.metadata == {} for artifact in artifacts.values())


def test_python_func_with_a_bad_fraction_names_it_and_leaves_no_files(tmp_path):
    artifacts = _artifacts(tmp_path / "out")
    with pytest.raises(IngestError, match="test_fraction must be a number strictly between 0 and 1, got 1.2"):
        ingest.python_func(source="synthetic://fraud?rows=500", label_column="is_fraud", **artifacts, test_fraction=1.2)
    assert not (tmp_path / "out").exists()


def test_component_runs_under_kfp_local(tmp_path):
    @dsl.pipeline
    def ingest_pipeline(source: str) -> Dataset:
        return ingest(source=source, label_column="is_fraud").outputs["test_data"]

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    run = ingest_pipeline(source="synthetic://fraud?rows=1000&seed=1&fraud_rate=0.2")
    output = run.output
    frame = pd.read_parquet(output.path)
    assert output.metadata["split"] == "test"
    assert output.metadata["rows"] == len(frame) > 0
    assert frame["is_fraud"].dtype == "int64"
