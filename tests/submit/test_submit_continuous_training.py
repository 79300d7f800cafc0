"""``kfpkit submit continuous-training|monitoring`` with a params file and a schedule, against the loopback FAKES
of the KFP v2beta1 and Vertex AI v1 REST APIs (tests/submit/fakes.py), and its ``--help``."""

import argparse
import subprocess
import sys

import yaml
from google.auth.credentials import AnonymousCredentials

from kfpkit.cli import submit as submit_command
from kfpkit.pipelines.local import build_pipeline
from kfpkit.pipelines.parameters import pipeline_parameters

CONTINUOUS_TRAINING = {
    "registry_root": "gs://kfpkit-test/registry",
    "source": "gs://kfpkit-test/data/transactions.parquet",
    "label_column": "is_fraud",
    "model_name": "fraud-detector",
    "prometheus_url": "http://prometheus.monitoring:9090",
    "namespace": "kubeflow-user-example-com",
    "canary_percent": 20,
    "rollout_thresholds": {"max_score_js": 0.15},
}
MONITORING = {
    "model_uri": "gs://kfpkit-test/registry/fraud-detector/3",
    "live_source": "gs://kfpkit-test/payload-log",
    "registry_root": "gs://kfpkit-test/registry",
    "retrain_source": "gs://kfpkit-test/data/latest.parquet",
    "label_column": "is_fraud",
    "model_name": "fraud-detector",
    "prometheus_url": "http://prometheus.monitoring:9090",
}


def _params_file(tmp_path, values):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_help_of_submit_continuous_training_documents_every_flag_and_every_pipeline_parameter():
    proc = subprocess.run(
        [sys.executable, "-m", "kfpkit.cli.main", "submit", "continuous-training", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    parser = argparse.ArgumentParser(prog="kfpkit submit")
    submit_command.add_arguments(parser)
    for action in parser._actions:  # every flag has a help text, and the help shows it
        assert action.help, action.option_strings or action.dest
        for option in action.option_strings:
            assert option in proc.stdout, option
    listing = proc.stdout.split("parameters of the continuous-training pipeline", 1)[1]
    for parameter in pipeline_parameters(build_pipeline("continuous-training")).values():
        assert f"\n  {parameter.name} (" in listing, parameter.name
    assert "  prometheus_url (string, required)" in listing
    assert "  canary_percent (integer, default 10)" in listing


def test_help_without_a_pipeline_lists_no_parameters():
    proc = subprocess.run(
        [sys.executable, "-m", "kfpkit.cli.main", "submit", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "--target" in proc.stdout and "parameters of the" not in proc.stdout


def test_kubeflow_schedule_of_continuous_training_from_a_params_file(fake_kfp, kfpkit_submit, tmp_path):
    argv = [
        "continuous-training", "--target", "kubeflow", "--host", fake_kfp.url, "--existing-token", "t0ken",
        "--params-file", _params_file(tmp_path, CONTINUOUS_TRAINING), "--param", "framework=sklearn",
        "--service-account", "kfpkit-pipeline-runner", "--schedule", "0 0 3 * * *",
    ]  # fmt: skip
    status, out, err = kfpkit_submit(argv)
    assert fake_kfp.problems == []
    assert status == 0, err
    (pipeline,) = fake_kfp.pipelines.values()
    assert pipeline["display_name"] == "kfpkit-continuous-training"
    (recurring,) = fake_kfp.recurring_runs.values()
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *" and recurring["no_catchup"] is True
    assert recurring["runtime_config"]["parameters"] == {**CONTINUOUS_TRAINING, "framework": "sklearn"}
    assert recurring["service_account"] == "kfpkit-pipeline-runner"
    assert "recurring run" in out


def test_vertex_schedule_of_monitoring_from_a_params_file(fake_vertex, kfpkit_submit, tmp_path):
    argv = [
        "monitoring", "--target", "vertex", "--project", "my-project", "--location", "europe-west4",
        "--pipeline-root", "gs://kfpkit-test/pipeline-root", "--api-endpoint", fake_vertex.url,
        "--params-file", _params_file(tmp_path, MONITORING), "--schedule", "TZ=Europe/Amsterdam 0 4 * * *",
    ]  # fmt: skip
    status, _out, err = kfpkit_submit(argv, credentials=AnonymousCredentials())
    assert fake_vertex.problems == []
    assert status == 0, err
    ((_name, schedule),) = fake_vertex.schedules.items()
    assert schedule.cron == "TZ=Europe/Amsterdam 0 4 * * *"
    job = schedule.create_pipeline_job_request.pipeline_job
    assert dict(job.runtime_config.parameter_values) == MONITORING
    assert dict(job.pipeline_spec)["pipelineInfo"]["name"] == "kfpkit-monitoring"


def test_a_continuous_training_run_without_its_prometheus_is_refused_before_anything_is_sent(
    fake_kfp, kfpkit_submit, tmp_path
):
    values = {k: v for k, v in CONTINUOUS_TRAINING.items() if k != "prometheus_url"}
    argv = [
        "continuous-training", "--target", "kubeflow", "--host", fake_kfp.url,
        "--params-file", _params_file(tmp_path, values),
    ]  # fmt: skip
    status, out, err = kfpkit_submit(argv)
    assert status == 2 and out == "" and "prometheus_url" in err
    assert fake_kfp.requests == []
