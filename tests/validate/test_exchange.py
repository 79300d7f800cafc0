"""The TFDV request and result records between validate's two interpreters (kfpkit.components.validate.exchange)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from kfpkit.components.validate import exchange, logic
from kfpkit.core.records import RecordError, read_record, write_record

LABEL = "is_fraud"


def _request(tmp_path="/work") -> exchange.TfdvRequest:
    out = os.path.join(str(tmp_path), "out")
    return exchange.TfdvRequest(
        train=exchange.SplitInput("/data/train.parquet", "gs://bucket/train.parquet"),
        eval=exchange.SplitInput("/data/eval.parquet"),
        test=exchange.SplitInput("/data/test.parquet", None),
        label_column=LABEL,
        curated_schema=None,
        skew_thresholds={"amount": 0.2},
        default_numeric_js_threshold=0.3,
        default_categorical_linf_threshold=0.3,
        eval_environment="TRAINING",
        beam_pipeline_args=["--runner=DirectRunner"],
        outputs=exchange.TfdvOutputs(
            train_statistics=f"{out}/train_statistics",
            eval_statistics=f"{out}/eval_statistics",
            test_statistics=f"{out}/test_statistics",
            schema=f"{out}/schema",
            anomalies_dir=f"{out}/anomalies",
            baseline_dir=f"{out}/baseline",
        ),
    )


def _result() -> exchange.TfdvResult:
    return exchange.TfdvResult(
        anomalies=[
            exchange.AnomalyReason(
                split="eval",
                check="schema",
                feature="channel",
                type="ENUM_TYPE_UNEXPECTED_STRING_VALUES",
                short_description="Unexpected string values",
                description="Examples contain values missing from the schema: phone.",
                severity="ERROR",
            )
        ],
        skew=[
            exchange.SkewMeasurement(
                "amount", "train/eval", "jensen_shannon_distance", 0.05, 0.1, False, 0.03, 20, [7, 1]
            ),
            exchange.SkewMeasurement("channel", "train/eval", "l_infinity", 0.02, 0.3, False),
        ],
        features=[{"name": "amount", "type": "FLOAT", "train": {"kind": "numeric", "min": 1.0}, "eval": None}],
        environments=["TRAINING", "SERVING"],
        num_examples={"train": 400, "eval": 200, "test": 200},
        statistics_mode="in-memory",
        timings={"import": 4.2, "statistics": 0.5},
    )


@pytest.mark.parametrize("make", [_request, _result, lambda: exchange.TfdvFailure(error="curated schema x is bad")])
def test_each_exchange_record_round_trips_through_its_file(tmp_path, make):
    record = make()
    write_record(str(tmp_path / "record.json"), record)
    assert read_record(str(tmp_path / "record.json"), type(record)) == record
    assert type(record).from_dict(json.loads(record.to_json())) == record


@pytest.mark.parametrize("make", [_request, _result, lambda: exchange.TfdvFailure(error="bad")])
def test_each_exchange_record_of_another_version_is_refused(make):
    record = make()
    document = {**record.to_dict(), "record_version": record.VERSION + 1}
    with pytest.raises(RecordError, match=f"{record.KIND}: record_version must be {record.VERSION}, got"):
        type(record).from_dict(document)


def test_a_request_missing_a_nested_field_is_refused_naming_it():
    document = _request().to_dict()
    del document["outputs"]["baseline_dir"]
    with pytest.raises(RecordError, match=r"tfdv request: outputs\.baseline_dir is missing"):
        exchange.TfdvRequest.from_dict(document)
    document = _request().to_dict()
    del document["label_column"]
    with pytest.raises(RecordError, match="tfdv request: label_column is missing"):
        exchange.TfdvRequest.from_dict(document)


def test_a_result_missing_or_mistyping_a_field_is_refused_naming_it():
    document = _result().to_dict()
    del document["anomalies"][0]["severity"]
    with pytest.raises(RecordError, match=r"tfdv result: anomalies\[0\]\.severity is missing"):
        exchange.TfdvResult.from_dict(document)
    document = _result().to_dict()
    document["skew"][0]["value"] = "0.05"
    with pytest.raises(RecordError, match=r"skew\[0\]\.value must be a number"):
        exchange.TfdvResult.from_dict(document)
    with pytest.raises(RecordError, match="tfdv failure: error is missing"):
        exchange.TfdvFailure.from_dict({"record": "tfdv failure", "record_version": 1})


def test_read_outcome_returns_a_result_or_a_failure_and_names_the_file_of_anything_else(tmp_path):
    path = str(tmp_path / "result.json")
    write_record(path, _result())
    assert exchange.read_outcome(path) == _result()
    write_record(path, exchange.TfdvFailure(error="eval_environment 'X' is not an environment"))
    assert exchange.read_outcome(path) == exchange.TfdvFailure(error="eval_environment 'X' is not an environment")
    with open(path, "w") as fh:
        json.dump({"ok": True, "anomalies": []}, fh)  # the untyped result of earlier kfpkit versions
    with pytest.raises(RecordError, match=r"result.json: record must be 'tfdv result', got None"):
        exchange.read_outcome(path)
    with open(path, "w") as fh:
        fh.write('{"record": "tfdv result", "rec')
    with pytest.raises(RecordError, match=r"result.json: cannot read the TFDV outcome"):
        exchange.read_outcome(path)


def test_request_split_and_output_accessors_name_the_split():
    request = _request()
    assert request.split("eval").path == "/data/eval.parquet"
    assert request.outputs.statistics("test").endswith("/test_statistics")
    with pytest.raises(KeyError, match="unknown split 'valid'"):
        request.split("valid")


# ------------------------------------------------------------------------------------------------
# run_validation's side, with a stand-in for the TFDV interpreter (no TFDV needed)


def _fake_tfdv_python(tmp_path, body: str) -> str:
    """An executable that, like tfdv_main, reads --request and writes --result; ``body`` decides what."""
    script = tmp_path / "fake-tfdv-python"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            """
            import json, shutil, sys
            args = sys.argv[sys.argv.index("--request"):]
            request_path, result_path = args[1], args[3]
            shutil.copy(request_path, sys.argv[0] + ".request.json")  # the work folder is removed afterwards
            """
        )
        + textwrap.dedent(body)
    )
    script.chmod(0o755)
    return str(script)


def _run(tmp_path, data_dir, vh, python):
    return logic.run_validation(
        str(data_dir / "train.parquet"),
        str(data_dir / "eval.parquet"),
        str(data_dir / "test.parquet"),
        LABEL,
        vh.output_paths(tmp_path / "out"),
        skew_thresholds={"amount": 0.25},
        tfdv_python=python,
    )


def test_run_validation_writes_a_typed_request_and_reports_the_failure_the_tfdv_side_wrote(tmp_path, data_dir, vh):
    python = _fake_tfdv_python(
        tmp_path,
        """
        json.dump({"record": "tfdv failure", "record_version": 1, "error": "curated schema s.pbtxt is bad"},
                  open(result_path, "w"))
        sys.exit(2)
        """,
    )
    with pytest.raises(logic.ValidateError, match=r"^curated schema s.pbtxt is bad$"):
        _run(tmp_path, data_dir, vh, python)
    request = read_record(python + ".request.json", exchange.TfdvRequest)
    assert request.label_column == LABEL and request.skew_thresholds == {"amount": 0.25}
    assert request.train.path == str(data_dir / "train.parquet") and request.beam_pipeline_args is None
    assert not os.path.exists(tmp_path / "out")


def test_run_validation_refuses_an_invalid_result_naming_the_field_and_writes_nothing(tmp_path, data_dir, vh):
    python = _fake_tfdv_python(
        tmp_path,
        """
        json.dump({"record": "tfdv result", "record_version": 2, "anomalies": [], "skew": [], "features": [],
                   "environments": ["TRAINING"], "num_examples": {}, "statistics_mode": "in-memory"},
                  open(result_path, "w"))
        """,
    )
    with pytest.raises(logic.ValidateError, match=r"wrote an invalid result: .*result.json: timings is missing"):
        _run(tmp_path, data_dir, vh, python)
    assert not os.path.exists(tmp_path / "out")


# ------------------------------------------------------------------------------------------------
# The TFDV interpreter's side


@pytest.mark.tfdv
def test_the_tfdv_interpreter_reads_the_request_and_writes_a_result_the_main_side_reads(tmp_path, tfdv_python):
    write_record(str(tmp_path / "request.json"), _request(tmp_path))
    code = textwrap.dedent(
        f"""
        from kfpkit.components.validate import exchange
        from kfpkit.core.records import read_record, write_record
        request = read_record({str(tmp_path / "request.json")!r}, exchange.TfdvRequest)
        result = exchange.TfdvResult(
            anomalies=[], skew=[], features=[], environments=["TRAINING"],
            num_examples={{"train": len(request.split("train").path)}}, statistics_mode="in-memory",
            timings={{"threshold": request.skew_thresholds["amount"]}},
        )
        write_record({str(tmp_path / "result.json")!r}, result)
        """
    )
    subprocess.run([tfdv_python, "-c", code], check=True, env=logic._child_env(tfdv_python), timeout=120)
    result = exchange.read_outcome(str(tmp_path / "result.json"))
    assert isinstance(result, exchange.TfdvResult)
    assert result.num_examples == {"train": len("/data/train.parquet")} and result.timings == {"threshold": 0.2}


@pytest.mark.tfdv
def test_tfdv_main_refuses_a_request_of_another_version_with_exit_code_2_and_a_failure(tmp_path, tfdv_python):
    document = {**_request(tmp_path).to_dict(), "record_version": 99}
    (tmp_path / "request.json").write_text(json.dumps(document))
    done = subprocess.run(
        [tfdv_python, "-m", logic.TFDV_MAIN_MODULE, "--request", "request.json", "--result", "result.json"],
        check=False,
        cwd=tmp_path,
        env=logic._child_env(tfdv_python),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    failure = exchange.read_outcome(str(tmp_path / "result.json"))
    assert isinstance(failure, exchange.TfdvFailure)
    assert f"record_version must be {exchange.TfdvRequest.VERSION}, got 99" in failure.error
