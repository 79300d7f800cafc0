"""The ``kfpkit`` command line: one module per command, ``run`` flags built from each pipeline's inputs."""

import importlib
import json
import os

import pytest

from kfpkit.cli import main as cli
from kfpkit.cli import run as run_command
from kfpkit.pipelines import registry
from kfpkit.pipelines.local import build_pipeline
from kfpkit.pipelines.platforms import TARGETS

# the training pipeline's required data and model names (besides --registry)
DATA_FLAGS = ("--source", "synthetic://fraud?rows=10", "--label-column", "is_fraud", "--model-name", "fraud")


def _parse(*argv):
    return cli.build_parser(argv[0]).parse_args(list(argv))


def test_every_registered_command_lives_in_kfpkit_cli_and_exposes_add_arguments_and_run():
    for name, text in cli.COMMANDS:
        module = importlib.import_module(cli.module_of(name))
        assert module.__name__ == "kfpkit.cli." + name.replace("-", "_")
        assert callable(module.add_arguments) and callable(module.run), name
        assert text, name
    names = [name for name, _ in cli.COMMANDS]
    assert names == sorted(set(names)), "keep cli.COMMANDS sorted by name, one entry per command"


def _sample(spec):
    """A value of the parameter's type that differs from its default."""
    samples = {
        "String": lambda d: "x-" + (d or ""),
        "Integer": lambda d: (d or 0) + 7,
        "Float": lambda d: (d or 0.0) + 0.5,
        "Boolean": lambda d: not d,
        "List": lambda d: ["a", 1],
        "Dict": lambda d: {"a": 1},
    }
    return samples[spec.type](spec.default)


def _flag_argv(name, spec, value):
    flag = "--" + name.replace("_", "-")
    if spec.type == "Boolean":
        return [flag if value else "--no-" + flag[2:]]
    return [flag, json.dumps(value) if spec.type in ("List", "Dict") else str(value)]


@pytest.mark.parametrize("pipeline", registry.pipeline_names())
def test_every_pipeline_parameter_is_reachable_from_the_cli_with_its_type(pipeline):
    inputs = build_pipeline(pipeline).component_spec.inputs
    expected, argv = {}, ["run", pipeline]
    for name, spec in inputs.items():
        expected[name] = _sample(spec)
        argv += _flag_argv(name, spec, expected[name])
    arguments = run_command.pipeline_arguments(_parse(*argv))
    for name in run_command.LOCAL_PATH_PARAMETERS:
        if name in expected:
            assert arguments[name] == os.path.abspath(expected[name])
            arguments[name] = expected[name]
    assert arguments == expected
    left_out = run_command.pipeline_arguments(
        _parse("run", pipeline, *[a for n, s in inputs.items() if not s.optional for a in _flag_argv(n, s, "r")])
    )
    assert set(left_out) == {n for n, s in inputs.items() if not s.optional}, "left-out flags take pipeline defaults"


@pytest.mark.parametrize("pipeline", registry.pipeline_names())
def test_run_help_shows_each_parameters_description_and_default(pipeline, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["run", pipeline, "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, spec in build_pipeline(pipeline).component_spec.inputs.items():
        assert "--" + name.replace("_", "-") in text, name
        description = " ".join((spec.description or "").split())
        assert description, f"pipeline {pipeline!r}: parameter {name!r} has no description in its docstring"
        assert description in text, name
        if spec.default not in (None, ""):
            assert f"[default: {spec.default}]" in text or f"[default: {json.dumps(spec.default)}]" in text, name


def test_run_flags_parse_to_typed_pipeline_arguments_and_leave_the_rest_to_pipeline_defaults(tmp_path):
    args = _parse(
        "run", "training", *DATA_FLAGS, "--registry", "reg", "--weight-decay", "0.001", "--epochs", "3",
        "--fail-on-anomalies", "--verbose",
    )  # fmt: skip
    arguments = run_command.pipeline_arguments(args)
    assert arguments["weight_decay"] == 0.001 and arguments["epochs"] == 3
    assert arguments["fail_on_anomalies"] is True and arguments["source"] == "synthetic://fraud?rows=10"
    assert arguments["registry_root"].endswith("/reg") and arguments["registry_root"].startswith("/")
    assert "learning_rate" not in arguments and "test_fraction" not in arguments
    assert args.verbose is True and args.pipeline_root == "./local_outputs"
    gcs = _parse("run", "training", *DATA_FLAGS, "--registry", "gs://b/r")
    assert run_command.pipeline_arguments(gcs)["registry_root"] == "gs://b/r"
    no = run_command.pipeline_arguments(
        _parse("run", "training", *DATA_FLAGS, "--registry", "r", "--no-fail-on-anomalies")
    )
    assert no["fail_on_anomalies"] is False


@pytest.fixture
def local_runs(monkeypatch):
    """Replaces kfp.local: records the arguments of each ``kfpkit run`` that got as far as running."""
    from kfpkit.pipelines import local

    calls = []

    def fake_run(name, arguments, **options):
        calls.append(arguments)
        return local.summarize_run(None, options["pipeline_root"], True, 1.0, pipeline=name)

    monkeypatch.setattr(local, "run_pipeline_locally", fake_run)
    return calls


def test_run_without_the_required_parameters_and_with_a_bad_type_exit_with_status_2(local_runs, capsys):
    assert cli.main(["run", "training", "--source", "s", "--label-column", "y"]) == 2
    err = capsys.readouterr().err
    assert (
        "kfpkit run training: pipeline training needs model_name, registry_root (--model-name ... --registry ...)"
        in err
    )
    with pytest.raises(SystemExit) as bad:
        _parse("run", "training", *DATA_FLAGS, "--registry", "r", "--epochs", "three")
    assert bad.value.code == 2 and "invalid" in capsys.readouterr().err
    assert local_runs == []


# --- --params-file: a YAML or JSON mapping of parameters, overridden by flags ---------------------------

TRAINING_YAML = """\
registry_root: reg          # relative: made absolute like --registry
source: synthetic://fraud?rows=10
label_column: is_fraud
model_name: fraud
epochs: 3
learning_rate: 1e-3         # a string to YAML 1.1: read like the flag's text
fail_on_anomalies: true
"""


def test_run_params_file_alone_gives_the_run_its_typed_parameters(local_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "training.yaml").write_text(TRAINING_YAML)
    assert cli.main(["run", "training", "--params-file", "training.yaml"]) == 0
    assert local_runs == [
        {
            "registry_root": str(tmp_path / "reg"),
            "source": "synthetic://fraud?rows=10",
            "label_column": "is_fraud",
            "model_name": "fraud",
            "epochs": 3,
            "learning_rate": 0.001,
            "fail_on_anomalies": True,
        }
    ]


def test_run_flags_override_the_params_file(local_runs, tmp_path):
    path = tmp_path / "training.json"
    path.write_text(json.dumps({"registry_root": "gs://b/r", "source": "a.csv", "label_column": "y", "epochs": 3}))
    argv = ["run", "training", "--params-file", str(path), "--epochs", "5", "--source", "b.csv", "--model-name", "m"]
    assert cli.main(argv) == 0
    (arguments,) = local_runs
    assert arguments == {
        "registry_root": "gs://b/r",
        "source": "b.csv",
        "label_column": "y",
        "epochs": 5,
        "model_name": "m",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epoch: 3\n", "pipeline training has no parameter epoch; its parameters:"),
        ("epochs: 2.5\n", "parameter epochs (NUMBER_INTEGER): 2.5 is not an integer"),
        ("fail_on_anomalies: maybe\n", "parameter fail_on_anomalies (BOOLEAN): 'maybe' is not true or false"),
        ("model_name: [a, b]\n", "parameter model_name (STRING): ['a', 'b'] is not a string"),
        ("source: 'a.csv\n", "not YAML or JSON: found unexpected end of stream (line 2, column 1)"),
        ("{epochs: 3,\n", "not YAML or JSON:"),
        ("source: a\nsource: b\n", "key 'source' given twice (line 2, column 1)"),
        ("just text\n", "expected a mapping of parameter names to values, not a str"),
    ],
)
def test_run_refuses_a_bad_params_file_naming_the_file_before_anything_runs(
    local_runs, tmp_path, capsys, text, message
):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert cli.main(["run", "training", *DATA_FLAGS, "--registry", "r", "--params-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"kfpkit run training: params file {path}: " in err and message in err
    assert local_runs == []


def test_run_params_file_that_does_not_exist_is_refused(local_runs, tmp_path, capsys):
    assert cli.main(["run", "training", "--params-file", str(tmp_path / "nope.yaml")]) == 2
    assert f"params file {tmp_path / 'nope.yaml'}: No such file or directory" in capsys.readouterr().err
    assert local_runs == []


def test_run_help_offers_the_params_file(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "training", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--params-file FILE YAML or JSON file mapping this pipeline's parameter names to values" in text
    assert "(required: this flag or --params-file)" in text


def test_unknown_flags_are_an_error_except_for_a_command_that_forwards_them(capsys):
    with pytest.raises(SystemExit) as bad:
        cli.main(["compile", "--target", TARGETS[0], "--out", "x", "--bogus"])
    assert bad.value.code == 2 and "--bogus" in capsys.readouterr().err
    parser = cli.build_parser("serve")
    args, extra = parser.parse_known_args(["serve", "--model-dir", "m", "--http-port", "9"])
    assert args.extra_argv == [] and extra == ["--model-dir", "m", "--http-port", "9"]


def test_compile_targets_and_pipelines_come_from_the_registries(tmp_path, capsys):
    for target in TARGETS:
        assert _parse("compile", "--target", target, "--out", str(tmp_path)).target == target
    for name in registry.pipeline_names():
        assert _parse("compile", "--target", TARGETS[0], "--out", "x", "--pipeline", name).pipeline == name
    with pytest.raises(SystemExit):
        _parse("compile", "--target", "local-cluster", "--out", "x")
    capsys.readouterr()
    assert cli.main(["compile", "--target", "kubeflow", "--out", str(tmp_path), "--pipeline", "training"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "training.kubeflow.yaml")


def test_serve_help_is_the_serve_parsers(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["serve", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "--model-dir" in out and "--http_port" in out


def test_summary_json_of_a_finished_run_is_written_where_asked(tmp_path, monkeypatch):
    import dataclasses

    from kfpkit.core.records import read_record
    from kfpkit.core.run_summary import RunSummary
    from kfpkit.pipelines import local

    summary = local.summarize_run(None, str(tmp_path), True, 1.0)
    monkeypatch.setattr(local, "run_pipeline_locally", lambda *a, **k: summary)
    target = tmp_path / "deep" / "summary.json"
    code = cli.main(["run", "training", *DATA_FLAGS, "--registry", str(tmp_path / "r"), "--summary-json", str(target)])
    assert code == 0 and read_record(str(target), RunSummary) == summary
    summary = dataclasses.replace(summary, status="failed")
    assert cli.main(["run", "training", *DATA_FLAGS, "--registry", str(tmp_path / "r")]) == 1
