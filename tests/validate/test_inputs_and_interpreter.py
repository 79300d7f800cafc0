"""Input checks and the TFDV-interpreter plumbing of run_validation: no TFDV needed (fast)."""

import json
import os
import subprocess
import sys

import pytest

from kfpkit.components.validate import logic

LABEL = "is_fraud"
HEAVY = ("tensorflow", "tensorflow_data_validation", "tfx_bsl", "apache_beam", "tensorflow_metadata")


def _leftovers(root) -> list:
    return sorted(os.listdir(root)) if os.path.exists(root) else []


def test_importing_the_component_and_logic_imports_no_tensorflow():
    code = (
        "import sys, json\n"
        "import kfpkit.components.validate.component, kfpkit.components.validate.logic\n"
        "import kfpkit.components.validate.report\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_missing_train_file_fails_naming_the_path(tmp_path, data_dir, vh):
    missing = str(tmp_path / "nope.parquet")
    with pytest.raises(logic.ValidateError, match=r"train_data: .*nope\.parquet does not exist"):
        logic.run_validation(
            missing,
            str(data_dir / "eval.parquet"),
            str(data_dir / "test.parquet"),
            LABEL,
            vh.output_paths(tmp_path / "out"),
        )
    assert _leftovers(tmp_path / "out") == []


def test_empty_eval_split_fails_naming_the_file_and_writes_nothing(tmp_path, data_dir, vh):
    empty = vh.write_parquet(vh.make_frame(10, seed=3).iloc[:0], tmp_path / "empty.parquet")
    with pytest.raises(logic.ValidateError, match=r"eval_data: .*empty\.parquet has no rows"):
        logic.run_validation(
            str(data_dir / "train.parquet"),
            empty,
            str(data_dir / "test.parquet"),
            LABEL,
            vh.output_paths(tmp_path / "out"),
        )
    assert _leftovers(tmp_path / "out") == []


def test_missing_or_empty_test_split_fails_naming_test_data_and_writes_nothing(tmp_path, data_dir, vh):
    train, evaluation = str(data_dir / "train.parquet"), str(data_dir / "eval.parquet")
    with pytest.raises(logic.ValidateError, match=r"test_data: .*absent\.parquet does not exist"):
        logic.run_validation(
            train, evaluation, str(tmp_path / "absent.parquet"), LABEL, vh.output_paths(tmp_path / "out")
        )
    empty = vh.write_parquet(vh.make_frame(10, seed=3).iloc[:0], tmp_path / "empty.parquet")
    with pytest.raises(logic.ValidateError, match=r"test_data: .*empty\.parquet has no rows"):
        logic.run_validation(train, evaluation, empty, LABEL, vh.output_paths(tmp_path / "out"))
    assert _leftovers(tmp_path / "out") == []


def test_a_file_that_is_not_parquet_fails_naming_it(tmp_path, data_dir, vh):
    bogus = tmp_path / "eval.parquet"
    bogus.write_text("amount,hour\n1,2\n")
    with pytest.raises(logic.ValidateError, match=r"eval_data: .*eval\.parquet is not a readable Parquet file"):
        logic.run_validation(
            str(data_dir / "train.parquet"),
            str(bogus),
            str(data_dir / "test.parquet"),
            LABEL,
            vh.output_paths(tmp_path / "out"),
        )


def test_a_column_type_tfdv_cannot_describe_fails_naming_the_column(tmp_path, data_dir, vh):
    import pandas as pd

    frame = vh.make_frame(20, seed=3)
    frame["seen_at"] = pd.Timestamp("2026-01-01")
    train = vh.write_parquet(frame, tmp_path / "train.parquet")
    with pytest.raises(logic.ValidateError, match=r"train_data: column 'seen_at' of .* has Arrow type timestamp"):
        logic.run_validation(
            train,
            str(data_dir / "eval.parquet"),
            str(data_dir / "test.parquet"),
            LABEL,
            vh.output_paths(tmp_path / "out"),
        )


def test_label_missing_from_train_fails_naming_the_column(tmp_path, data_dir, vh):
    with pytest.raises(logic.ValidateError, match=r"label column 'churned' is not in train_data"):
        logic.run_validation(
            str(data_dir / "train.parquet"),
            str(data_dir / "eval.parquet"),
            str(data_dir / "test.parquet"),
            "churned",
            vh.output_paths(tmp_path),
        )


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"amuont": 0.5}, r"skew_thresholds: 'amuont' is not a column of train_data"),
        ({LABEL: 0.5}, r"'is_fraud' is the label column; the label has no skew check"),
        ({"amount": -0.1}, r"skew_thresholds\['amount'\] must be a finite number >= 0"),
        ({"amount": float("nan")}, r"skew_thresholds\['amount'\] must be a finite number >= 0"),
    ],
)
def test_bad_skew_thresholds_fail_naming_the_feature(tmp_path, data_dir, thresholds, message, vh):
    with pytest.raises(logic.ValidateError, match=message):
        logic.run_validation(
            str(data_dir / "train.parquet"),
            str(data_dir / "eval.parquet"),
            str(data_dir / "test.parquet"),
            LABEL,
            vh.output_paths(tmp_path),
            skew_thresholds=thresholds,
        )


def test_negative_default_threshold_fails_naming_the_parameter(tmp_path, data_dir, vh):
    with pytest.raises(logic.ValidateError, match="default_numeric_js_threshold must be a finite number"):
        logic.run_validation(
            str(data_dir / "train.parquet"),
            str(data_dir / "eval.parquet"),
            str(data_dir / "test.parquet"),
            LABEL,
            vh.output_paths(tmp_path),
            default_numeric_js_threshold=-1.0,
        )


def test_unknown_eval_environment_fails_naming_the_choices(tmp_path, data_dir, vh):
    with pytest.raises(logic.ValidateError, match="eval_environment must be 'TRAINING' or 'SERVING', got 'SERVNG'"):
        logic.run_validation(
            str(data_dir / "train.parquet"),
            str(data_dir / "eval.parquet"),
            str(data_dir / "test.parquet"),
            LABEL,
            vh.output_paths(tmp_path),
            eval_environment="SERVNG",
        )


def test_curated_schema_as_artifact_and_uri_together_is_refused(tmp_path, data_dir, vh):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "amount" type: FLOAT }\n')
    with pytest.raises(logic.ValidateError, match="as an artifact or as a URI, not both"):
        logic.run_validation(
            str(data_dir / "train.parquet"),
            str(data_dir / "eval.parquet"),
            str(data_dir / "test.parquet"),
            LABEL,
            vh.output_paths(tmp_path / "out"),
            curated_schema_path=str(schema),
            curated_schema_uri=str(schema),
        )


def test_missing_curated_schema_fails_naming_it(tmp_path, data_dir, vh):
    with pytest.raises(logic.ValidateError, match=r"curated schema .*missing\.pbtxt does not exist"):
        logic.run_validation(
            str(data_dir / "train.parquet"),
            str(data_dir / "eval.parquet"),
            str(data_dir / "test.parquet"),
            LABEL,
            vh.output_paths(tmp_path / "out"),
            curated_schema_uri=str(tmp_path / "missing.pbtxt"),
        )


# ------------------------------------------------------------------------------------------------
# Which interpreter runs the TFDV work


def test_explicit_tfdv_python_wins_over_the_environment_variable(monkeypatch):
    monkeypatch.setenv(logic.TFDV_PYTHON_ENV, "/nonexistent/python")
    assert logic.resolve_tfdv_python(sys.executable) == sys.executable


def test_environment_variable_is_used_when_no_explicit_interpreter(monkeypatch):
    monkeypatch.setenv(logic.TFDV_PYTHON_ENV, sys.executable)
    assert logic.resolve_tfdv_python() == sys.executable


def test_environment_variable_pointing_nowhere_fails_naming_it(monkeypatch):
    monkeypatch.setenv(logic.TFDV_PYTHON_ENV, "/nonexistent/python")
    with pytest.raises(logic.ValidateError, match=r"KFPKIT_TFDV_PYTHON='/nonexistent/python' is not an executable"):
        logic.resolve_tfdv_python()


def test_checkout_tfdv_venv_is_the_fallback_in_the_main_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(logic.TFDV_PYTHON_ENV, raising=False)
    fake = tmp_path / ".venv-tfdv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(logic, "_repo_tfdv_python", lambda: str(fake))
    assert logic.resolve_tfdv_python() == str(fake)


def test_no_tfdv_interpreter_anywhere_explains_how_to_create_one(monkeypatch, tmp_path):
    monkeypatch.delenv(logic.TFDV_PYTHON_ENV, raising=False)
    monkeypatch.setattr(logic, "_repo_tfdv_python", lambda: str(tmp_path / "absent" / "python"))
    with pytest.raises(logic.ValidateError, match=r"no TFDV interpreter found.*make setup"):
        logic.resolve_tfdv_python()


def test_repo_fallback_is_the_checkouts_venv_tfdv():
    import kfpkit.components

    checkout = os.path.dirname(os.path.dirname(os.path.abspath(kfpkit.components.__file__)))
    assert logic._repo_tfdv_python() == os.path.join(checkout, ".venv-tfdv", "bin", "python")


def test_an_interpreter_without_tfdv_fails_with_the_tail_of_its_stderr_and_leaves_nothing(tmp_path, data_dir, vh):
    out = tmp_path / "out"
    with pytest.raises(logic.ValidateError) as info:
        logic.run_validation(
            str(data_dir / "train.parquet"),
            str(data_dir / "eval.parquet"),
            str(data_dir / "test.parquet"),
            LABEL,
            vh.output_paths(out),
            tfdv_python=sys.executable,  # the main environment: no TFDV
        )
    message = str(info.value)
    assert "failed with exit code 1" in message
    assert "No module named 'tensorflow_data_validation'" in message
    assert "point KFPKIT_TFDV_PYTHON at the TFDV environment" in message
    assert _leftovers(out) == []


def test_child_environment_drops_the_main_envs_pythonpath(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/main/site-packages")
    env = logic._child_env("/some/other/python")
    assert "PYTHONPATH" not in env
    assert env["TF_CPP_MIN_LOG_LEVEL"] in {"2", "3"}
