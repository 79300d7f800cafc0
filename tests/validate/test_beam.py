"""The Beam statistics path (beam_pipeline_args) on three tiny splits with the DirectRunner."""

import os

import pytest

from kfpkit.components.validate import logic

pytestmark = pytest.mark.tfdv

LABEL = "is_fraud"


@pytest.fixture(scope="module")
def beam_run(tfdv_python, data_dir, tmp_path_factory, vh):
    outputs = vh.output_paths(tmp_path_factory.mktemp("validate-beam") / "out")
    result = logic.run_validation(
        str(data_dir / "train.parquet"),
        str(data_dir / "eval.parquet"),
        str(data_dir / "test.parquet"),
        LABEL,
        outputs,
        beam_pipeline_args=["--runner=DirectRunner"],
        tfdv_python=tfdv_python,
    )
    return result, outputs


def test_beam_path_validates_clean_data(beam_run):
    result, _ = beam_run
    assert result.statistics_mode == "beam"
    assert result.passed is True
    assert result.num_examples == {"train": 400, "eval": 200, "test": 200}


def test_beam_and_in_memory_statistics_infer_the_same_schema(beam_run, clean_component_run):
    _, outputs = beam_run
    with open(outputs.schema, encoding="utf-8") as fh:
        beam_schema = fh.read()
    with open(clean_component_run.artifacts["schema"].path, encoding="utf-8") as fh:
        in_memory_schema = fh.read()
    assert beam_schema == in_memory_schema


def test_beam_statistics_are_written_like_the_in_memory_ones(beam_run):
    _, outputs = beam_run
    assert os.path.getsize(outputs.train_statistics) > 100 and os.path.getsize(outputs.test_statistics) > 100
    assert sorted(os.listdir(outputs.baseline)) == [logic.BASELINE_SCHEMA_FILE, logic.BASELINE_STATS_FILE]
