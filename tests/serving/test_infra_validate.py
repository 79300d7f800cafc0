"""infra_validate: the candidate served in the KServe ModelServer app, compared with offline predict_proba."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from kfpkit.components.infra_validate.logic import run_infra_validate
from kfpkit.core import model_dir as md


@pytest.fixture(scope="module")
def eval_path(tmp_path_factory, kit):
    path = str(tmp_path_factory.mktemp("eval") / "eval.parquet")
    kit.make_frame(rows=120, seed=3).to_parquet(path)
    return path


@pytest.fixture()
def candidate(torch_dir, copy_dir):
    """A train-style candidate: no MANIFEST.json yet (push writes it)."""
    directory = copy_dir(torch_dir)
    os.remove(os.path.join(directory, md.MANIFEST_FILE))
    return directory


def test_good_candidate_is_infra_blessed_and_left_unchanged(candidate, eval_path, tmp_path):
    before = sorted(os.listdir(candidate))
    report = tmp_path / "report.md"
    result = run_infra_validate(candidate, eval_path, str(report), num_requests=30, batch_size=16)
    assert result.infra_blessed, result.reasons
    assert result.rows_checked == 120 and result.framework == "pytorch"
    assert result.v1_max_abs_diff <= 1e-4 and result.v2_max_abs_diff <= 1e-4
    assert result.latency_requests == 30 and 0 < result.latency_p50_ms <= result.latency_p99_ms
    assert sorted(os.listdir(candidate)) == before  # the manifest went into a temporary copy
    text = report.read_text()
    assert "**INFRA BLESSED**" in text and "| v2 predictions match offline predict_proba | pass |" in text


def test_calibrated_candidate_serves_the_calibrated_probability(candidate, eval_path):
    """calibration.json is applied by LoadedModel inside the server as offline: both match, and differ from
    the model's own (uncalibrated) output."""
    import pandas as pd

    calibration = md.PlattCalibration(slope=0.6, intercept=-1.5)
    calibration.save(candidate)
    card = md.read_model_card(candidate)
    md.write_model_card(candidate, dataclasses.replace(card, calibration=calibration.method))
    result = run_infra_validate(candidate, eval_path, None, num_requests=5, batch_size=40)
    assert result.infra_blessed, result.reasons
    assert result.v1_max_abs_diff <= 1e-4 and result.v2_max_abs_diff <= 1e-4
    loaded = md.load_model(candidate)
    frame = pd.read_parquet(eval_path)
    raw = loaded.predict_uncalibrated_arrays(*loaded.spec.transform(frame))
    assert np.max(np.abs(loaded.predict_proba(frame) - raw)) > 100 * 1e-4  # the check would see a missing calibration


def test_candidate_with_an_invalid_model_card_is_not_blessed_naming_the_field(candidate, eval_path):
    path = os.path.join(candidate, md.MODEL_CARD_FILE)
    with open(path, encoding="utf-8") as fh:
        document = json.load(fh)
    document["decision_threshold"] = 2.0
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(document, fh)
    result = run_infra_validate(candidate, eval_path, None)
    assert not result.infra_blessed
    assert "ModelCardError" in result.reasons[0] and "decision_threshold must be a finite number" in result.reasons[0]


def test_sklearn_candidate_with_a_manifest_is_verified_and_blessed(sklearn_dir, eval_path):
    result = run_infra_validate(sklearn_dir, eval_path, None, num_requests=5, batch_size=50)
    assert result.infra_blessed, result.reasons
    assert result.framework == "sklearn" and result.v1_max_abs_diff == pytest.approx(0.0, abs=1e-12)


def test_candidate_without_its_model_file_is_not_blessed_with_the_reason(candidate, eval_path, tmp_path):
    os.remove(os.path.join(candidate, md.TORCHSCRIPT_FILE))
    report = tmp_path / "report.md"
    result = run_infra_validate(candidate, eval_path, str(report))
    assert not result.infra_blessed
    assert result.reasons == [
        f"model loads in the server: refused: ModelDirError: {result.reasons[0].split('ModelDirError: ')[1]}"
    ]
    assert "no model file model.pt" in result.reasons[0]
    assert "**NOT INFRA BLESSED**" in report.read_text() and "no model file model.pt" in report.read_text()


def test_tampered_candidate_manifest_is_not_blessed(sklearn_dir, copy_dir, eval_path):
    directory = copy_dir(sklearn_dir)
    with open(os.path.join(directory, md.MODEL_CARD_FILE), "a", encoding="utf-8") as fh:
        fh.write("\n")
    result = run_infra_validate(directory, eval_path, None)
    assert not result.infra_blessed and "sha256 mismatch in model_card.json" in result.reasons[0]


def test_missing_candidate_directory_is_not_blessed(tmp_path, eval_path):
    result = run_infra_validate(str(tmp_path / "nope"), eval_path, None)
    assert not result.infra_blessed and "is not a directory" in result.reasons[0]


def test_latency_over_budget_is_not_blessed(candidate, eval_path):
    result = run_infra_validate(candidate, eval_path, None, latency_budget_ms=1e-6, num_requests=3)
    assert not result.infra_blessed
    assert len(result.reasons) == 1 and result.reasons[0].startswith("p99 latency within budget: p99 ")


def test_eval_data_without_a_feature_is_not_blessed(candidate, tmp_path, kit):
    path = str(tmp_path / "eval.parquet")
    kit.make_frame(rows=20).drop(columns=["channel"]).to_parquet(path)
    result = run_infra_validate(candidate, path, None)
    assert not result.infra_blessed and "missing feature column(s) ['channel']" in result.reasons[0]


def test_invalid_parameters_and_missing_eval_file_raise(candidate, eval_path, tmp_path):
    with pytest.raises(ValueError, match="tolerance"):
        run_infra_validate(candidate, eval_path, None, tolerance=-1.0)
    with pytest.raises(ValueError, match="num_requests"):
        run_infra_validate(candidate, eval_path, None, num_requests=0)
    with pytest.raises(ValueError, match="batch_size"):
        run_infra_validate(candidate, eval_path, None, batch_size=0)
    with pytest.raises(FileNotFoundError, match="no such file"):
        run_infra_validate(candidate, str(tmp_path / "missing.parquet"), None)


def test_component_python_func_with_tmp_path_artifacts(candidate, eval_path, tmp_path):
    from kfp.dsl import Dataset, Markdown, Model

    from kfpkit.components.infra_validate.component import infra_validate

    model = Model(uri=candidate)
    eval_data = Dataset(uri=eval_path)
    report = Markdown(uri=str(tmp_path / "out" / "report.md"))
    outputs = infra_validate.python_func(
        model=model, eval_data=eval_data, report=report, num_requests=10, batch_size=32
    )
    assert outputs is True
    assert report.metadata["infra_blessed"] is True and report.metadata["rows_checked"] == 120
    assert "**INFRA BLESSED**" in open(report.path, encoding="utf-8").read()

    os.remove(os.path.join(candidate, md.PREPROCESSING_FILE))
    failed = infra_validate.python_func(model=model, eval_data=eval_data, report=report)
    assert failed is False
    assert "no preprocessing.json" in report.metadata["reasons"][0]


def _threshold_next_to(candidate, eval_path, offset: float) -> int:
    """Sets the card's decision threshold ``offset`` above one row's offline probability; returns that row."""
    import pandas as pd

    from kfpkit.components.infra_validate import logic

    frame = pd.read_parquet(eval_path).head(logic.MAX_CHECK_ROWS)
    offline = md.load_model(candidate).predict_proba(frame)
    row = int(np.argsort(offline)[len(offline) // 2])
    card = md.read_model_card(candidate)
    md.write_model_card(candidate, dataclasses.replace(card, decision_threshold=float(offline[row]) + offset))
    return row


def _serve_row_as(monkeypatch, row: int, probability_offset: float, label: int) -> None:
    """The server answers ``row`` with its probability moved by ``probability_offset`` and ``label``."""
    from kfpkit.components.infra_validate import logic

    real = logic._send_check_rows

    async def nudged(probe, check_frame):
        served = await real(probe, check_frame)
        for protocol in ("v1", "v2"):
            served.probabilities[protocol][row] += probability_offset
            served.labels[protocol][row] = label
        return served

    monkeypatch.setattr(logic, "_send_check_rows", nudged)


def test_a_row_within_the_tolerance_of_the_threshold_may_take_either_label(candidate, eval_path, monkeypatch):
    """Float noise across the serving path (here 3e-5, under the 1e-4 tolerance) may put a probability 2e-5
    under the threshold offline on the other side of it when served: not a defect, if the served label
    follows the served probability."""
    row = _threshold_next_to(candidate, eval_path, 2e-5)
    _serve_row_as(monkeypatch, row, 3e-5, label=1)
    result = run_infra_validate(candidate, eval_path, None, num_requests=5, batch_size=40)
    assert result.infra_blessed, result.reasons
    assert "1 row(s) within the tolerance of the threshold" in json.dumps(result.checks)


def test_a_label_that_contradicts_its_own_probability_is_not_blessed(candidate, eval_path, monkeypatch):
    row = _threshold_next_to(candidate, eval_path, 2e-5)
    _serve_row_as(monkeypatch, row, -1e-5, label=1)  # served probability under the threshold, label 1
    result = run_infra_validate(candidate, eval_path, None, num_requests=5, batch_size=40)
    assert not result.infra_blessed
    assert "1 label(s) differ" in " ".join(result.reasons)


def test_a_wrong_label_away_from_the_threshold_is_not_blessed(candidate, eval_path, monkeypatch):
    row = _threshold_next_to(candidate, eval_path, 0.05)
    _serve_row_as(monkeypatch, row, 0.0, label=1)
    result = run_infra_validate(candidate, eval_path, None, num_requests=5, batch_size=40)
    assert not result.infra_blessed
    assert "1 label(s) differ" in " ".join(result.reasons)
