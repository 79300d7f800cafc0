"""evaluate_model and run_evaluation on real sklearn model directories (train's format) and a real registry."""

from __future__ import annotations

import base64
import json
import os
import shutil
from xml.etree import ElementTree

import numpy as np
import pytest
from sklearn import metrics as skm

from kfpkit.components.evaluate.logic import EvaluationError, evaluate_model, run_evaluation, write_evaluated_model
from kfpkit.core import bootstrap, registry
from kfpkit.core import model_dir as md

LABEL = "is_fraud"


def _copy(source: str, tmp_path, name: str = "copy") -> str:
    target = str(tmp_path / name)
    shutil.copytree(source, target)
    return target


# --------------------------------------------------------------------------------------------- metrics
def test_metrics_equal_sklearn_on_the_models_own_scores(models):
    result = evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.0)
    loaded = md.load_model(models.strong)
    scores = loaded.predict_proba(models.test_frame)
    labels = models.test_frame[LABEL].to_numpy()
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert result.metrics["pr_auc"] == pytest.approx(skm.average_precision_score(labels, scores), abs=1e-12)
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(labels, scores), abs=1e-12)
    assert result.metrics["brier_score"] == pytest.approx(skm.brier_score_loss(labels, scores), abs=1e-12)
    threshold = loaded.card.decision_threshold
    predicted = (scores >= threshold).astype(int)
    assert result.threshold == threshold == result.metrics["decision_threshold"]
    assert result.metrics["precision"] == pytest.approx(skm.precision_score(labels, predicted))
    assert result.metrics["recall"] == pytest.approx(skm.recall_score(labels, predicted))
    assert result.metrics["f1"] == pytest.approx(skm.f1_score(labels, predicted))
    assert result.confusion_matrix == skm.confusion_matrix(labels, predicted).tolist()
    assert sum(map(sum, result.confusion_matrix)) == len(models.test_frame) == result.test_rows
    assert result.test_positives == int(labels.sum())
    assert result.framework == "sklearn"
    assert 0.15 < result.metrics["pr_auc"] < 0.9  # the fixture model is useful, not perfect


def test_roc_curve_of_a_model_has_at_most_200_finite_points(models):
    result = evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.0)
    assert 2 < len(result.roc.fpr) <= 200
    assert len(result.roc.fpr) == len(result.roc.tpr) == len(result.roc.thresholds)
    assert result.roc.thresholds[0] == 1.0
    assert all(np.isfinite(result.roc.thresholds))
    assert (result.roc.fpr[-1], result.roc.tpr[-1]) == (1.0, 1.0)


def test_report_says_every_figure_comes_from_the_test_split(models):
    result = evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.0)
    report = result.report_markdown
    assert result.split == "test"
    assert report.startswith("# Model evaluation on the test split")
    assert "comes from the **test split** only" in report and "## Metrics on the test split" in report
    assert "Reliability diagram on the test split" in report


def test_reliability_table_and_ece_match_the_scores(models):
    result = evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.0)
    scores = md.load_model(models.strong).predict_proba(models.test_frame)
    labels = models.test_frame[LABEL].to_numpy()
    assert len(result.reliability) == 15
    assert sum(b.rows for b in result.reliability) == len(labels)
    gaps = sum(b.rows * abs(b.mean_score - b.positive_rate) for b in result.reliability if b.rows)
    assert result.metrics["ece"] == pytest.approx(gaps / len(labels))
    first = result.reliability[0]
    in_first = scores < 1 / 15
    assert first.rows == int(in_first.sum()) and first.positive_rate == pytest.approx(labels[in_first].mean())
    row = f"| [0.000, 0.067) | {first.rows} | {first.mean_score:.4f} | {first.positive_rate:.4f} |"
    assert row in result.report_markdown
    prefix = "![Reliability diagram on the test split](data:image/svg+xml;base64,"
    assert prefix in result.report_markdown
    encoded = result.report_markdown.split(prefix, 1)[1].split(")", 1)[0]
    svg = ElementTree.fromstring(base64.b64decode(encoded))  # well-formed SVG
    circles = svg.findall("{http://www.w3.org/2000/svg}circle")
    assert len(circles) == sum(1 for b in result.reliability if b.rows)  # one dot per non-empty bin


def test_ece_ceiling_fails_a_miscalibrated_model_and_passes_when_unset_or_zero(models):
    unset = evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.0)
    ece = unset.metrics["ece"]
    assert unset.blessed is True and not any("ECE" in r for r in unset.reasons)
    assert evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.0, max_ece=0.0).blessed is True
    strict = evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.0, max_ece=ece / 2)
    assert strict.blessed is False
    assert strict.reasons[1].startswith(f"fail: ECE {ece:.4f} > ceiling {ece / 2:.4f} (95% interval ")
    assert "ECE ≤ `max_ece`" in strict.report_markdown
    loose = evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.0, max_ece=ece * 2)
    assert loose.blessed is True and loose.reasons[1].startswith("pass: ECE")


def test_slice_table_covers_every_row_per_value(models):
    result = evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.0, slice_column="country")
    frame = models.test_frame
    by_value = {s.value: s for s in result.slices}
    assert set(by_value) == {"DE", "FR", "US", "(missing)"}
    assert sum(s.rows for s in result.slices) == len(frame)
    de = frame[frame["country"] == "DE"]
    assert by_value["DE"].rows == len(de)
    assert by_value["DE"].positives == int(de[LABEL].sum())
    scores = md.load_model(models.strong).predict_proba(de)
    assert by_value["DE"].roc_auc == pytest.approx(skm.roc_auc_score(de[LABEL], scores))
    assert by_value["DE"].pr_auc == pytest.approx(skm.average_precision_score(de[LABEL], scores))
    assert by_value["(missing)"].rows == int(frame["country"].isna().sum())
    report = result.report_markdown
    assert "## Slices by `country`" in report
    assert f"| DE | {len(de)} | {int(de[LABEL].sum())} | {by_value['DE'].roc_auc:.4f} |" in report


def test_no_slice_column_means_no_slice_table(models):
    result = evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.0)
    assert result.slices == [] and "## Slices" not in result.report_markdown


# --------------------------------------------------------------------------------------------- intervals
def test_every_bootstrap_metric_gets_a_seeded_interval_around_its_point_estimate(models):
    result = evaluate_model(models.strong, models.test_path, LABEL)
    assert set(result.intervals) == set(bootstrap.METRICS)
    for name, interval in result.intervals.items():
        assert interval.point == pytest.approx(result.metrics[name], abs=1e-9), name
        assert interval.low <= interval.point <= interval.high, name
        assert (interval.level, interval.resamples) == (0.95, 1000)
    again = evaluate_model(models.strong, models.test_path, LABEL)
    assert again.intervals == result.intervals  # seeded: the same model on the same rows, the same intervals
    logged = result.metrics_to_log()
    for name in bootstrap.METRICS:
        assert (logged[f"{name}_low"], logged[f"{name}_high"]) == (
            result.intervals[name].low,
            result.intervals[name].high,
        )
    assert logged["pr_auc_floor"] == result.decision.pr_auc_floor


def test_report_gives_each_metric_its_interval_and_says_how_they_were_drawn(models):
    result = evaluate_model(models.strong, models.test_path, LABEL, confidence=0.9)
    pr_auc = result.intervals["pr_auc"]
    assert pr_auc.level == 0.9
    line = f"| PR-AUC (average precision) | {pr_auc.point:.4f} | {pr_auc.low:.4f} to {pr_auc.high:.4f} |"
    assert line in result.report_markdown
    assert "90% percentile intervals of 1000 stratified bootstrap resamples" in result.report_markdown


def test_fewer_resamples_can_be_asked_for_and_are_recorded(models):
    result = evaluate_model(models.strong, models.test_path, LABEL, resamples=200)
    assert {interval.resamples for interval in result.intervals.values()} == {200}


def test_evaluated_model_carries_the_test_metrics_and_intervals_in_its_card(models, tmp_path):
    result = evaluate_model(models.strong, models.test_path, LABEL)
    output = str(tmp_path / "evaluated")
    write_evaluated_model(models.strong, result, output)
    card = md.read_model_card(output)
    assert card.metrics["test"] == result.metrics
    assert card.intervals["test"] == {name: result.intervals[name].to_dict() for name in bootstrap.METRICS}
    assert set(card.intervals["test"]["pr_auc"]) == {"point", "low", "high", "level", "resamples"}
    source = md.read_model_card(models.strong)
    assert source.intervals == {} and "test" not in source.metrics  # the input is left as it was
    assert sorted(os.listdir(output)) == sorted(os.listdir(models.strong))
    assert md.load_model(output).predict_proba(models.test_frame) == pytest.approx(
        md.load_model(models.strong).predict_proba(models.test_frame)
    )
    assert [name for name in os.listdir(tmp_path) if name != "evaluated"] == []  # no staging folder left


def test_evaluated_model_with_a_manifest_gets_a_manifest_covering_the_new_card(models, tmp_path):
    result = evaluate_model(models.strong_with_manifest, models.test_path, LABEL)
    output = str(tmp_path / "evaluated")
    write_evaluated_model(models.strong_with_manifest, result, output)
    md.verify_manifest(output)
    assert md.load_model(output, verify=True).card.intervals["test"]["roc_auc"]["level"] == 0.95


# --------------------------------------------------------------------------------------------- gate
def test_weak_model_below_the_floor_is_not_blessed_and_the_report_says_why(models):
    result = evaluate_model(models.weak, models.test_path, LABEL)
    assert result.blessed is False
    rate = result.test_positives / result.test_rows
    floor = result.decision.pr_auc_floor
    assert floor == pytest.approx(rate + 0.1 * (1 - rate))  # 6% positives: a tenth of the way to perfect
    pr_auc = result.intervals["pr_auc"]
    assert result.reasons[0] == (
        f"fail: PR-AUC {result.metrics['pr_auc']:.4f} (95% interval {pr_auc.low:.4f} to {pr_auc.high:.4f}) below "
        f"the floor {floor:.4f} (10% of the way from chance {rate:.4f} to 1, lower than 5 × chance {5 * rate:.4f})"
    )
    assert f"| PR-AUC floor | {result.metrics['pr_auc']:.4f} |" in result.report_markdown
    assert f"{floor:.4f} (chance {rate:.4f}) | below the floor |" in result.report_markdown
    assert any("no baseline model given" in r for r in result.reasons)
    assert "**Verdict: NOT BLESSED**" in result.report_markdown
    for reason in result.reasons:
        assert f"- {reason}" in result.report_markdown


def test_model_above_the_floor_without_baseline_is_blessed(models):
    result = evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.1)
    assert result.blessed is True
    assert result.baseline_metrics is None
    assert result.reasons[0].startswith("pass: PR-AUC") and "above the floor" in result.reasons[0]
    assert result.decision.floor_position == "above" and result.intervals["pr_auc"].low > result.decision.pr_auc_floor
    assert "**Verdict: BLESSED**" in result.report_markdown
    assert "maximizes F1 on the eval" in result.report_markdown  # the threshold rule is stated


def test_regression_against_a_better_baseline_is_not_blessed(models):
    result = evaluate_model(models.weak, models.test_path, LABEL, baseline_dir=models.strong_with_manifest)
    assert result.blessed is False
    assert result.baseline_metrics is not None
    difference = result.regression.interval
    assert difference.point == pytest.approx(result.metrics["pr_auc"] - result.baseline_metrics["pr_auc"])
    assert difference.high < -0.01  # the whole interval of the difference is a drop above max_regression
    assert result.decision.regression_declared is True and result.decision.regression_share == 1.0
    assert result.reasons[1] == (
        f"fail: PR-AUC {result.metrics['pr_auc']:.4f} vs baseline {result.baseline_metrics['pr_auc']:.4f}: "
        f"difference {difference.point:+.4f} (95% interval {difference.low:.4f} to {difference.high:.4f}, paired on "
        f"the same rows); a drop above 0.0100 in 100.0% of 1000 resamples ≥ 95%: regression"
    )
    assert "| metric | candidate | interval | baseline |" in result.report_markdown
    assert "| PR-AUC difference vs baseline |" in result.report_markdown
    logged = result.metrics_to_log()
    assert logged["baseline_pr_auc"] == result.baseline_metrics["pr_auc"]
    assert (logged["pr_auc_difference_low"], logged["pr_auc_difference_high"]) == (difference.low, difference.high)
    assert logged["regression_share"] == 1.0


def test_drop_within_the_allowed_regression_is_blessed(models):
    result = evaluate_model(
        models.weak,
        models.test_path,
        LABEL,
        max_regression=0.5,
        baseline_dir=models.strong_with_manifest,
        baseline_label="baseline fraud v7",
    )
    assert result.blessed is False  # the weak model fails the floor; the regression check passes
    assert result.reasons[1].startswith("pass: PR-AUC") and "vs baseline fraud v7" in result.reasons[1]
    assert "a drop above 0.5000 in 0.0% of 1000 resamples < 95%: no regression" in result.reasons[1]


def test_same_model_as_the_baseline_passes_with_zero_allowed_regression(models):
    result = evaluate_model(
        models.strong,
        models.test_path,
        LABEL,
        min_pr_auc=0.1,
        max_regression=0.0,
        baseline_dir=models.strong_with_manifest,
    )
    assert result.blessed is True
    assert result.baseline_metrics["pr_auc"] == pytest.approx(result.metrics["pr_auc"])


def test_baseline_failing_its_manifest_check_is_recorded_and_only_the_floor_applies(models, tmp_path):
    baseline = _copy(models.strong_with_manifest, tmp_path)
    with open(os.path.join(baseline, md.PREPROCESSING_FILE), "a", encoding="utf-8") as fh:
        fh.write("\n")
    result = evaluate_model(models.weak, models.test_path, LABEL, baseline_dir=baseline)
    assert result.baseline_metrics is None and result.regression is None
    assert [r.split(":")[0] for r in result.reasons] == ["fail", "warning"]  # the floor, then why no regression check
    warning = [r for r in result.reasons if r.startswith("warning:")]
    assert len(warning) == 1
    assert "ModelDirError" in warning[0] and "sha256 mismatch in preprocessing.json" in warning[0]
    assert "no regression check" in warning[0]
    assert warning[0] in result.report_markdown
    assert "baseline_pr_auc" not in result.metrics_to_log()


def test_baseline_without_manifest_is_not_trusted(models):
    result = evaluate_model(models.weak, models.test_path, LABEL, min_pr_auc=0.0, baseline_dir=models.strong)
    assert result.baseline_metrics is None
    assert any("no MANIFEST.json" in r for r in result.reasons)


def test_baseline_whose_manifest_differs_from_the_registry_pointer_is_rejected(models):
    result = evaluate_model(
        models.weak,
        models.test_path,
        LABEL,
        min_pr_auc=0.0,
        baseline_dir=models.strong_with_manifest,
        baseline_content_sha256="0" * 64,
    )
    assert result.baseline_metrics is None
    assert any("differs from the registry pointer" in r for r in result.reasons)


# --------------------------------------------------------------------------------------------- registry
def test_first_run_with_an_empty_registry_checks_the_floor_only(models, tmp_path):
    result = run_evaluation(
        models.strong,
        models.test_path,
        LABEL,
        min_pr_auc=0.1,
        baseline_registry_root=str(tmp_path / "registry"),
        model_name="fraud",
    )
    assert result.blessed is True
    assert result.baseline_metrics is None
    assert any("no blessed version of 'fraud' yet (first run)" in r for r in result.reasons)


def test_registry_latest_blessed_version_is_the_baseline(models, tmp_path):
    root = str(tmp_path / "registry")
    pushed = registry.push_version(models.strong, root, "fraud")
    result = run_evaluation(
        models.weak, models.test_path, LABEL, min_pr_auc=0.0, baseline_registry_root=root, model_name="fraud"
    )
    assert result.blessed is False
    assert result.baseline_label == f"baseline fraud v{pushed.version}"
    assert result.reasons[1].startswith("fail:") and f"vs baseline fraud v{pushed.version}" in result.reasons[1]
    strong = evaluate_model(models.strong, models.test_path, LABEL, min_pr_auc=0.0)
    assert result.baseline_metrics["pr_auc"] == pytest.approx(strong.metrics["pr_auc"])


def test_tampered_registry_version_is_recorded_and_the_candidate_gets_the_floor_only(models, tmp_path):
    root = str(tmp_path / "registry")
    pushed = registry.push_version(models.strong, root, "fraud")
    with open(os.path.join(pushed.model_uri, md.SKOPS_FILE), "ab") as fh:
        fh.write(b"tampered")
    result = run_evaluation(models.weak, models.test_path, LABEL, baseline_registry_root=root, model_name="fraud")
    assert result.baseline_metrics is None and result.regression is None
    assert [r.split(":")[0] for r in result.reasons] == ["fail", "warning"]  # the floor only
    assert any(
        r.startswith("warning: baseline fraud v1 could not be evaluated") and "model.skops" in r for r in result.reasons
    )


def test_no_registry_configured_is_stated_in_the_reasons(models):
    result = run_evaluation(models.strong, models.test_path, LABEL, min_pr_auc=0.1)
    assert any("no baseline registry configured" in r for r in result.reasons)


@pytest.mark.parametrize(
    ("root", "name", "missing"), [("/tmp/r", None, "model_name"), (None, "fraud", "baseline_registry_root")]
)
def test_registry_root_and_model_name_must_be_given_together(models, root, name, missing):
    with pytest.raises(EvaluationError, match=f"{missing} is not set"):
        run_evaluation(models.strong, models.test_path, LABEL, baseline_registry_root=root, model_name=name)


def test_invalid_model_name_fails_instead_of_skipping_the_baseline(models, tmp_path):
    with pytest.raises(registry.RegistryError, match="Fraud_Model"):
        run_evaluation(
            models.strong, models.test_path, LABEL, baseline_registry_root=str(tmp_path), model_name="Fraud_Model"
        )


# --------------------------------------------------------------------------------------------- bad input
def test_missing_label_column_fails_naming_the_column(models, tmp_path):
    path = str(tmp_path / "test.parquet")
    models.test_frame.drop(columns=[LABEL]).to_parquet(path)
    with pytest.raises(EvaluationError, match=r"label column 'is_fraud' not found"):
        evaluate_model(models.strong, path, LABEL)


def test_missing_slice_column_fails_naming_the_column(models):
    with pytest.raises(EvaluationError, match=r"slice column 'merchant' not found"):
        evaluate_model(models.strong, models.test_path, LABEL, slice_column="merchant")


def test_missing_feature_column_fails_naming_the_feature(models, tmp_path):
    path = str(tmp_path / "test.parquet")
    models.test_frame.drop(columns=["amount"]).to_parquet(path)
    with pytest.raises(EvaluationError, match=r"does not fit model.*'amount'"):
        evaluate_model(models.strong, path, LABEL)


def test_missing_test_file_fails_naming_the_path(models, tmp_path):
    path = str(tmp_path / "nope.parquet")
    with pytest.raises(EvaluationError, match=r"nope\.parquet: no such file"):
        evaluate_model(models.strong, path, LABEL)


def test_test_file_that_is_not_parquet_fails_naming_the_path(models, tmp_path):
    path = tmp_path / "test.parquet"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(EvaluationError, match="not a readable Parquet file"):
        evaluate_model(models.strong, str(path), LABEL)


def test_test_split_without_positives_fails(models, tmp_path):
    path = str(tmp_path / "test.parquet")
    models.test_frame[models.test_frame[LABEL] == 0].to_parquet(path)
    with pytest.raises(EvaluationError, match=r"holds only negatives \(0\)"):
        evaluate_model(models.strong, path, LABEL)


def test_model_dir_missing_its_model_file_fails_naming_the_file(models, tmp_path):
    directory = _copy(models.strong, tmp_path)
    os.remove(os.path.join(directory, md.SKOPS_FILE))
    with pytest.raises(md.ModelDirError, match=r"no model file model\.skops"):
        evaluate_model(directory, models.test_path, LABEL)


def test_model_dir_missing_its_preprocessing_spec_fails_naming_the_file(models, tmp_path):
    directory = _copy(models.strong, tmp_path)
    os.remove(os.path.join(directory, md.PREPROCESSING_FILE))
    with pytest.raises(md.ModelDirError, match=r"preprocessing\.json"):
        evaluate_model(directory, models.test_path, LABEL)


def test_model_trained_on_another_label_fails(models, tmp_path):
    directory = _copy(models.strong, tmp_path)
    card = md.read_model_card(directory)
    card.label_column = "chargeback"
    md.write_model_card(directory, card)
    with pytest.raises(EvaluationError, match="'chargeback' but label_column is 'is_fraud'"):
        evaluate_model(directory, models.test_path, LABEL)


def test_decision_threshold_outside_zero_one_fails_naming_the_field(models, tmp_path):
    directory = _copy(models.strong, tmp_path)
    path = os.path.join(directory, md.MODEL_CARD_FILE)
    with open(path, encoding="utf-8") as fh:
        card = json.load(fh)
    card["decision_threshold"] = 3
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(card, fh)
    with pytest.raises(
        md.ModelCardError, match=r"model_card\.json: decision_threshold must be a finite number in \[0, 1\], got 3"
    ):
        evaluate_model(directory, models.test_path, LABEL)


def test_torchscript_model_directory_is_evaluated_like_the_sklearn_one(models, tmp_path):
    torch = pytest.importorskip("torch")
    from kfpkit.core.preprocessing import PreprocessingSpec

    spec = PreprocessingSpec.fit(models.test_frame, LABEL, feature_columns=["amount", "channel", "hour"])

    class AmountAndWeb(torch.nn.Module):
        def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(2.0 * numeric[:, 0] + (categorical[:, 0] == 1).float() - 3.0)

    directory = tmp_path / "torch-model"
    directory.mkdir()
    torch.jit.script(AmountAndWeb()).save(str(directory / md.TORCHSCRIPT_FILE))
    spec.save(str(directory / md.PREPROCESSING_FILE))
    md.write_model_card(
        str(directory),
        md.ModelCard(
            framework="pytorch",
            model_file=md.TORCHSCRIPT_FILE,
            label_column=LABEL,
            feature_order=list(spec.feature_order),
            decision_threshold=0.3,
        ),
    )
    result = evaluate_model(str(directory), models.test_path, LABEL, min_pr_auc=0.0, slice_column="channel")
    scores = md.load_model(str(directory)).predict_proba(models.test_frame)
    labels = models.test_frame[LABEL].to_numpy()
    assert result.framework == "pytorch"
    assert result.metrics["pr_auc"] == pytest.approx(skm.average_precision_score(labels, scores), abs=1e-12)
    assert result.confusion_matrix == skm.confusion_matrix(labels, (scores >= 0.3).astype(int)).tolist()
