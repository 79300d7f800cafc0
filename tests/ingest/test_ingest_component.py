"""The ingest component: python_func with tmp-path artifacts, and a kfp.local run."""

import hashlib

import pandas as pd
import pytest
from kfp import dsl, local
from kfp.dsl import Dataset

from kfpkit.components.ingest.component import ingest
from kfpkit.components.ingest.errors import IngestError


def test_python_func_writes_both_datasets_and_sets_their_metadata(tmp_path):
    train = Dataset(uri=str(tmp_path / "train_data"))
    evaluation = Dataset(uri=str(tmp_path / "eval_data"))
    ingest.python_func(
        source="synthetic://fraud?rows=2000&seed=4",
        label_column="is_fraud",
        train_data=train,
        eval_data=evaluation,
        eval_fraction=0.25,
        split_key_column="transaction_id",
        seed=2,
    )
    for artifact, split in ((train, "train"), (evaluation, "eval")):
        frame = pd.read_parquet(artifact.path)
        assert artifact.metadata["split"] == split
        assert artifact.metadata["rows"] == len(frame)
        assert artifact.metadata["sha256"] == hashlib.sha256(open(artifact.path, "rb").read()).hexdigest()
        assert artifact.metadata["split_key"] == "transaction_id"
        assert artifact.metadata["split_seed"] == 2
        assert artifact.metadata["columns"]["is_fraud"] == "int64"
    assert train.metadata["rows"] + evaluation.metadata["rows"] == 2000
    assert 0.2 < evaluation.metadata["rows"] / 2000 < 0.3


def test_python_func_with_bad_input_raises_and_leaves_no_files(tmp_path):
    (tmp_path / "t.csv").write_text("a,label\n1,0\n2,maybe\n3,1\n")
    train = Dataset(uri=str(tmp_path / "out" / "train_data"))
    evaluation = Dataset(uri=str(tmp_path / "out" / "eval_data"))
    with pytest.raises(IngestError, match="'maybe'"):
        ingest.python_func(source=str(tmp_path / "t.csv"), label_column="label", train_data=train, eval_data=evaluation)
    assert not (tmp_path / "out").exists()
    assert train.metadata == {} and evaluation.metadata == {}


def test_component_runs_under_kfp_local(tmp_path):
    @dsl.pipeline
    def ingest_pipeline(source: str) -> Dataset:
        return ingest(source=source, label_column="is_fraud").outputs["eval_data"]

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    run = ingest_pipeline(source="synthetic://fraud?rows=500&seed=1")
    output = run.output
    frame = pd.read_parquet(output.path)
    assert output.metadata["split"] == "eval"
    assert output.metadata["rows"] == len(frame) > 0
    assert frame["is_fraud"].dtype == "int64"
