"""The run summary (JSON contract and terminal text) built from a recorded kfp.local run's outputs."""

import re
from pathlib import Path

import pytest

from kfpkit.core.model_card import ModelCard, write_model_card
from kfpkit.core.records import RecordError, read_record, write_record
from kfpkit.core.run_summary import RunSummary, ValidationOutcome
from kfpkit.pipelines import local

README = Path(__file__).resolve().parents[2] / "README.md"


def _summary(run_dir, succeeded=True, **kwargs):
    return local.summarize_run(str(run_dir), str(run_dir.parent), succeeded, 12.5, **kwargs)


def test_summary_of_a_blessed_run_states_the_split_of_each_figure(recorded_run):
    run_dir, _ = recorded_run("succeeded")
    summary = _summary(run_dir, run_log=str(run_dir / "run.log")).to_dict()
    assert summary["record"] == "run summary" and summary["record_version"] == 3
    assert summary["pipeline"] == "training"
    assert summary["status"] == "succeeded" and summary["failed_task"] is None
    assert summary["blessed"] is True and summary["infra_blessed"] is True
    assert summary["validation"] == {"passed": True, "anomalies": {}}
    assert summary["metrics_split"] == "test"
    assert summary["metrics"]["pr_auc"] == pytest.approx(0.3851, abs=1e-4)
    assert summary["metrics"]["ece"] == pytest.approx(0.0169, abs=1e-4) and "test_rows" in summary["metrics"]
    assert list(summary["training_metrics"]) == ["eval"]
    assert summary["training_metrics"]["eval"]["pr_auc"] == pytest.approx(0.4258, abs=1e-4)
    assert "blessed" not in summary["metrics"] and summary["baseline_metrics"] is None
    assert summary["model_version"] == 1 and summary["model_created"] is True
    assert summary["model_uri"] == str(run_dir.parent.parent / "registry" / "fraud-detector" / "1")
    assert summary["tasks"] == sorted(["ingest", "validate", "train", "evaluate", "infra-validate", "push"])
    assert summary["artifacts"]["train.model"] == str(run_dir / "train" / "model")
    assert summary["run_dir"] == str(run_dir) and summary["run_log"] == str(run_dir / "run.log")
    assert summary["duration_s"] == 12.5


def test_training_metrics_come_from_the_typed_model_card_by_split(recorded_run):
    run_dir, _ = recorded_run("succeeded")
    card = ModelCard(
        framework="pytorch",
        model_file="model.pt",
        label_column="is_fraud",
        feature_order=["amount"],
        decision_threshold=0.5,
        metrics={"eval": {"pr_auc": 0.31, "ece": 0.004, "best_epoch": 3}, "train": {"pr_auc": 0.4}},
    )
    write_model_card(str(run_dir / "train" / "model"), card)
    summary = _summary(run_dir)
    assert summary.training_metrics == {
        "eval": {"pr_auc": 0.31, "ece": 0.004, "best_epoch": 3},
        "train": {"pr_auc": 0.4},
    }
    text = local.format_summary(summary)
    assert "train, eval split: pr_auc=0.3100, ece=0.0040" in text
    assert "evaluate, test split: pr_auc=0.3851" in text


def test_an_unreadable_model_card_leaves_training_metrics_out_with_a_warning(recorded_run, caplog):
    run_dir, _ = recorded_run("succeeded")
    (run_dir / "train" / "model" / "model_card.json").write_text('{"metrics": {}}')
    assert _summary(run_dir).training_metrics is None
    assert "card_version" in caplog.text


def test_evaluate_stating_its_split_is_reported_as_such(recorded_run, edit_task_output):
    run_dir, _ = recorded_run("succeeded")
    edit_task_output(
        run_dir, "evaluate", lambda d: d["artifacts"]["metrics"]["artifacts"][0]["metadata"].update(split="holdout")
    )
    assert _summary(run_dir).metrics_split == "holdout"


def test_summary_of_an_unblessed_run_pushes_nothing_and_keeps_the_baseline(recorded_run, edit_task_output):
    run_dir, _ = recorded_run("succeeded")

    def unbless(document):
        document["parameterValues"]["Output"] = False
        meta = document["artifacts"]["metrics"]["artifacts"][0]["metadata"]
        meta.update(baseline_pr_auc=0.3, baseline_roc_auc=0.8, reasons=["fail: PR-AUC 0.3851 < floor 0.9990"])

    edit_task_output(run_dir, "evaluate", unbless)
    (run_dir / "push" / "executor_output.json").unlink()
    summary = _summary(run_dir)
    assert summary.blessed is False and summary.model_uri is None and summary.model_version is None
    assert summary.model_created is None and not summary.pushed
    assert summary.baseline_metrics == {"pr_auc": 0.3, "roc_auc": 0.8}
    assert "baseline_pr_auc" not in summary.metrics
    text = local.format_summary(summary)
    assert "blessed: no" in text and "- fail: PR-AUC 0.3851 < floor 0.9990" in text
    assert "pushed: nothing" in text and "baseline (latest blessed): pr_auc=0.3000, roc_auc=0.8000" in text


def test_summary_of_a_failed_task_names_it_and_keeps_what_finished(recorded_run):
    run_dir, _ = recorded_run("failed")
    summary = _summary(run_dir, succeeded=False, failed_task="ingest")
    assert summary.status == "failed" and summary.failed_task == "ingest" and not summary.succeeded
    assert summary.tasks == [] and summary.model_uri is None and summary.metrics_split is None
    text = local.format_summary(summary)
    assert text.splitlines()[0] == "kfpkit training run: FAILED in 12.5 s"
    assert "failed task: ingest" in text and "pushed: nothing" in text


def test_summary_of_a_run_that_never_started_has_no_run_folder(tmp_path):
    summary = local.summarize_run(None, str(tmp_path), False, 0.1, run_log=str(tmp_path / "x.run.log"))
    assert summary.run_dir is None and summary.tasks == [] and summary.training_metrics is None
    assert summary.run_log == str(tmp_path / "x.run.log")


def test_data_that_failed_validation_is_reported_with_its_anomalies(recorded_run, edit_task_output):
    run_dir, _ = recorded_run("succeeded")

    def invalid(document):
        document["parameterValues"]["Output"] = False
        meta = document["artifacts"]["anomalies"]["artifacts"][0]["metadata"]
        meta["anomalies"] = {"amount": "Out-of-range values"}

    edit_task_output(run_dir, "validate", invalid)
    for task in ("train", "evaluate", "infra-validate", "push"):
        (run_dir / task / "executor_output.json").unlink()
    summary = _summary(run_dir)
    assert summary.validation == ValidationOutcome(passed=False, anomalies={"amount": "Out-of-range values"})
    text = local.format_summary(summary)
    assert "data validation: FAILED" in text and "- amount: Out-of-range values" in text
    assert "training skipped" in text and "blessed:" not in text


def test_the_readme_documents_every_key_of_the_run_summary(recorded_run):
    run_dir, _ = recorded_run("succeeded")
    summary = _summary(run_dir).to_dict()
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Run summary JSON") :]
    section = section[: section.index("\n## ")]
    documented = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", section, flags=re.M):
        documented |= set(re.findall(r"`([a-z_0-9]+)`", row))
    assert documented == set(summary), f"README vs summary: {sorted(documented ^ set(summary))}"
    assert f'| `record`, `record_version` | str, int | `"{RunSummary.KIND}"`, {RunSummary.VERSION}' in section


def test_a_push_that_reused_an_existing_version_is_recorded_and_said(recorded_run, edit_task_output):
    run_dir, _ = recorded_run("succeeded")
    edit_task_output(
        run_dir, "push", lambda d: d["artifacts"]["pushed_model"]["artifacts"][0]["metadata"].update(created=False)
    )
    summary = _summary(run_dir)
    assert (summary.model_version, summary.model_created) == (1, False)
    assert "(version 1; already in the registry, nothing pushed)" in local.format_summary(summary)
    push = local.read_task(str(run_dir / "push"))
    assert local.task_outputs_text(push) == "version 1 (already in the registry, nothing pushed)"


def test_a_push_output_that_is_not_a_pushed_model_record_is_refused_naming_the_field(recorded_run, edit_task_output):
    run_dir, _ = recorded_run("succeeded")
    edit_task_output(
        run_dir, "push", lambda d: d["artifacts"]["pushed_model"]["artifacts"][0]["metadata"].pop("content_sha256")
    )
    with pytest.raises(RecordError, match="pushed_model: content_sha256 is missing"):
        _summary(run_dir)


def test_the_summary_file_reads_back_as_the_same_record(recorded_run, tmp_path):
    run_dir, _ = recorded_run("succeeded")
    summary = _summary(run_dir, run_log=str(run_dir / "run.log"))
    write_record(str(tmp_path / "summary.json"), summary)
    assert read_record(str(tmp_path / "summary.json"), RunSummary) == summary
