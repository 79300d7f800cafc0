"""``kfpkit submit`` against loopback FAKES of the KFP v2beta1 and Vertex AI v1 REST APIs.

The fakes check every request body against the client libraries' own models (see tests/submit/fakes.py);
each test asserts that they found no problem.
"""

import json
import subprocess
import sys

import pytest
import requests
from google.auth.credentials import AnonymousCredentials

from kfpkit.cli import main as cli
from kfpkit.pipelines.parameters import Parameter, ParameterError, check_parameters, spec_parameters
from kfpkit.pipelines.submit import cron
from kfpkit.pipelines.submit.errors import SubmitError
from kfpkit.pipelines.submit.prepare import prepare
from tests.submit.fakes import BadRequest, FakeKfp, FakeVertex

REGISTRY = "registry_root=gs://kfpkit-test/registry"
# the training pipeline's other required parameters (no pipeline defaults to the built-in sample)
DATA = {"source": "gs://kfpkit-test/data/transactions.parquet", "label_column": "is_fraud", "model_name": "fraud"}
DATA_ARGV = [arg for name, value in DATA.items() for arg in ("--param", f"{name}={value}")]


def kubeflow_argv(fake, *extra, data=True):
    base = ["training", "--target", "kubeflow", "--host", fake.url, "--existing-token", "t0ken"]
    return [*base, *(DATA_ARGV if data else []), *extra]


def vertex_argv(fake, *extra, data=True):
    return [
        "training",
        "--target",
        "vertex",
        "--project",
        "my-project",
        "--location",
        "europe-west4",
        "--pipeline-root",
        "gs://kfpkit-test/pipeline-root",
        "--api-endpoint",
        fake.url,
        *(DATA_ARGV if data else []),
        *extra,
    ]


# --- Kubeflow ------------------------------------------------------------------------------------------


def test_kubeflow_run_uploads_the_package_and_runs_it_with_typed_parameters(fake_kfp, kfpkit_submit):
    status, out, err = kfpkit_submit(
        kubeflow_argv(
            fake_kfp,
            "--namespace",
            "team-fraud",
            "--experiment",
            "nightly",
            "--run-name",
            "first",
            "--param",
            REGISTRY,
            "--param",
            "epochs=3",
            "--param",
            "learning_rate=0.01",
            "--param",
            "fail_on_anomalies=true",
            "--service-account",
            "pipeline-runner",
        )
    )
    assert fake_kfp.problems == []
    assert status == 0, err
    (run,) = fake_kfp.runs.values()
    assert f"id:  {run['run_id']}" in out
    assert f"url: {fake_kfp.url}/#/runs/details/{run['run_id']}" in out
    assert run["display_name"] == "first" and run["service_account"] == "pipeline-runner"
    assert run["runtime_config"]["parameters"] == {
        **DATA,
        "registry_root": "gs://kfpkit-test/registry",
        "epochs": 3,
        "learning_rate": 0.01,
        "fail_on_anomalies": True,
    }
    (pipeline,) = fake_kfp.pipelines.values()
    assert pipeline["display_name"] == "kfpkit-training" and pipeline["namespace"] == "team-fraud"
    (experiment,) = fake_kfp.experiments.values()
    assert (experiment["display_name"], experiment["namespace"]) == ("nightly", "team-fraud")
    assert run["experiment_id"] == experiment["experiment_id"]
    reference = run["pipeline_version_reference"]
    assert fake_kfp.versions[reference["pipeline_version_id"]]["pipeline_id"] == pipeline["pipeline_id"]
    assert {r["headers"].get("authorization") for r in fake_kfp.requests} == {"Bearer t0ken"}


def test_kubeflow_resubmitting_an_unchanged_pipeline_reuses_its_version(fake_kfp, kfpkit_submit):
    for _ in range(2):
        status, _, err = kfpkit_submit(kubeflow_argv(fake_kfp, "--param", REGISTRY))
        assert status == 0, err
    assert fake_kfp.problems == []
    assert len(fake_kfp.pipelines) == 1 and len(fake_kfp.versions) == 1 and len(fake_kfp.experiments) == 1
    assert len(fake_kfp.calls("POST", r".*/pipelines/upload_version")) == 1
    assert len(fake_kfp.runs) == 2
    # without --namespace kfp.Client asks /healthz whether KFP is multi-user
    assert fake_kfp.calls("GET", r".*/healthz")


def test_kubeflow_no_caching_uploads_a_spec_with_caching_off_on_every_task(fake_kfp, kfpkit_submit):
    status, _, err = kfpkit_submit(kubeflow_argv(fake_kfp, "--param", REGISTRY, "--no-caching"))
    assert status == 0, err
    (version,) = fake_kfp.versions.values()
    spec = version["_spec"]
    dags = [spec["root"], *(c for c in spec["components"].values() if "dag" in c)]
    tasks = [task for dag in dags for task in dag["dag"]["tasks"].values()]
    assert len(tasks) >= 6
    assert {task["cachingOptions"].get("enableCache", False) for task in tasks} == {False}


def test_kubeflow_schedule_creates_an_enabled_recurring_run_with_a_6_field_cron(fake_kfp, kfpkit_submit):
    status, out, err = kfpkit_submit(kubeflow_argv(fake_kfp, "--param", REGISTRY, "--schedule", "0 30 2 * * MON-FRI"))
    assert fake_kfp.problems == []
    assert status == 0, err
    assert fake_kfp.runs == {}
    (recurring,) = fake_kfp.recurring_runs.values()
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * MON-FRI"
    assert recurring["mode"] == "ENABLE" and recurring["no_catchup"] is True
    assert int(recurring["max_concurrency"]) == 1
    assert f"url: {fake_kfp.url}/#/recurringrun/details/{recurring['recurring_run_id']}" in out
    assert "recurring run" in out


def test_kubeflow_wait_prints_task_progress_and_exits_0_on_success(kfpkit_submit):
    script = [
        ("PENDING", {}),
        ("RUNNING", {"ingest": "RUNNING"}),
        ("RUNNING", {"ingest": "SUCCEEDED", "validate": "RUNNING"}),
        ("SUCCEEDED", {"ingest": "SUCCEEDED", "validate": "SUCCEEDED"}),
    ]
    with FakeKfp(run_script=script) as fake:
        status, out, err = kfpkit_submit(kubeflow_argv(fake, "--param", REGISTRY, "--wait", "--poll-interval", "0.01"))
        assert fake.problems == []
    assert status == 0, err
    lines = out.splitlines()
    assert any("run RUNNING" in line for line in lines)
    assert any(line.endswith("validate: RUNNING") for line in lines)
    assert any(line.endswith("validate: SUCCEEDED") for line in lines)
    assert lines[-1].endswith("SUCCEEDED")
    assert len(fake.calls("GET", r".*/runs/r-\d+")) == len(script)


def test_kubeflow_wait_exits_1_with_the_run_error_when_it_fails(kfpkit_submit):
    with FakeKfp(run_script=[("RUNNING", {"train": "RUNNING"}), ("FAILED", {"train": "FAILED"})]) as fake:
        status, out, _ = kfpkit_submit(kubeflow_argv(fake, "--param", REGISTRY, "--wait", "--poll-interval", "0.01"))
    assert status == 1
    assert "FAILED: task train failed" in out.splitlines()[-1]


def test_kubeflow_wait_gives_up_after_the_timeout(kfpkit_submit):
    with FakeKfp(run_script=[("RUNNING", {"train": "RUNNING"})]) as fake:
        argv = kubeflow_argv(fake, "--param", REGISTRY, "--wait", "--poll-interval", "0.01", "--timeout", "0.05")
        status, _, err = kfpkit_submit(argv)
    assert status == 1
    assert "still RUNNING" in err and "/#/runs/details/" in err


def test_kubeflow_kube_context_token_is_sent_as_the_bearer_token(fake_kfp, kfpkit_submit, tmp_path, monkeypatch):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "kube-token-123"}}],
                "contexts": [{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "prod",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    argv = ["training", "--target", "kubeflow", "--host", fake_kfp.url, "--kube-context", "prod", *DATA_ARGV]
    argv += ["--param", REGISTRY]
    status, _, err = kfpkit_submit(argv)
    assert status == 0, err
    assert {r["headers"].get("authorization") for r in fake_kfp.requests} == {"Bearer kube-token-123"}


def test_kubeflow_refusal_exits_1_with_the_service_message(kfpkit_submit):
    class QuotaKfp(FakeKfp):
        def _create_run(self, match, query, headers, body):
            raise BadRequest("namespace team-fraud is over its run quota", status=403)

    with QuotaKfp() as fake:
        status, _, err = kfpkit_submit(kubeflow_argv(fake, "--param", REGISTRY))
    assert status == 1
    assert "kubeflow refused the request: HTTP 403: namespace team-fraud is over its run quota" in err


def test_kfpkit_submit_is_a_registered_command(fake_kfp, capsys):
    assert cli.main(["submit", *kubeflow_argv(fake_kfp, "--param", REGISTRY)]) == 0
    (run,) = fake_kfp.runs.values()
    assert f"id:  {run['run_id']}" in capsys.readouterr().out


# --- Vertex AI -----------------------------------------------------------------------------------------


def test_vertex_run_creates_a_pipeline_job_with_root_parameters_labels_and_account(fake_vertex, kfpkit_submit):
    argv = vertex_argv(
        fake_vertex,
        "--param",
        REGISTRY,
        "--param",
        "epochs=4",
        "--param",
        "min_pr_auc=0.3",
        "--labels",
        "team=fraud,env=prod",
        "--service-account",
        "runner@my-project.iam.gserviceaccount.com",
        "--run-name",
        "nightly",
    )
    status, out, err = kfpkit_submit(argv, credentials=AnonymousCredentials())
    assert fake_vertex.problems == []
    assert status == 0, err
    ((name, job),) = fake_vertex.jobs.items()
    assert name.startswith("projects/my-project/locations/europe-west4/pipelineJobs/kfpkit-training-")
    assert job.display_name == "nightly"
    assert job.runtime_config.gcs_output_directory == "gs://kfpkit-test/pipeline-root"
    assert dict(job.runtime_config.parameter_values) == {
        **DATA,
        "registry_root": "gs://kfpkit-test/registry",
        "epochs": 4,
        "min_pr_auc": 0.3,
    }
    assert dict(job.labels) == {"team": "fraud", "env": "prod"}
    assert job.service_account == "runner@my-project.iam.gserviceaccount.com"
    assert dict(job.pipeline_spec)["pipelineInfo"]["name"] == "kfpkit-training"
    job_id = name.rsplit("/", 1)[-1]
    assert f"id:  {job_id}" in out
    assert (
        f"url: https://console.cloud.google.com/vertex-ai/locations/europe-west4/pipelines/runs/{job_id}"
        "?project=my-project"
    ) in out


def test_vertex_schedule_creates_a_pipeline_job_schedule_with_a_5_field_cron(fake_vertex, kfpkit_submit):
    argv = vertex_argv(fake_vertex, "--param", REGISTRY, "--schedule", "TZ=Europe/Amsterdam 0 3 * * 1-5")
    status, out, err = kfpkit_submit(argv, credentials=AnonymousCredentials())
    assert fake_vertex.problems == []
    assert status == 0, err
    assert fake_vertex.jobs == {}
    ((name, schedule),) = fake_vertex.schedules.items()
    assert schedule.cron == "TZ=Europe/Amsterdam 0 3 * * 1-5" and schedule.max_concurrent_run_count == 1
    request = schedule.create_pipeline_job_request
    assert request.parent == "projects/my-project/locations/europe-west4"
    assert request.pipeline_job.runtime_config.gcs_output_directory == "gs://kfpkit-test/pipeline-root"
    assert f"/pipelines/schedules/{name.rsplit('/', 1)[-1]}?project=my-project" in out


def test_vertex_wait_follows_the_job_to_success(fake_vertex, kfpkit_submit):
    argv = vertex_argv(fake_vertex, "--param", REGISTRY, "--wait", "--poll-interval", "0.01")
    status, out, err = kfpkit_submit(argv, credentials=AnonymousCredentials())
    assert fake_vertex.problems == []
    assert status == 0, err
    assert any(line.endswith("ingest: RUNNING") for line in out.splitlines())
    assert out.splitlines()[-1].endswith("PIPELINE_STATE_SUCCEEDED")


def test_vertex_wait_exits_1_when_the_job_fails(kfpkit_submit):
    script = [("PIPELINE_STATE_RUNNING", {"train": "RUNNING"}), ("PIPELINE_STATE_FAILED", {"train": "FAILED"})]
    with FakeVertex(run_script=script) as fake:
        argv = vertex_argv(fake, "--param", REGISTRY, "--wait", "--poll-interval", "0.01")
        status, out, _ = kfpkit_submit(argv, credentials=AnonymousCredentials())
    assert status == 1
    assert "PIPELINE_STATE_FAILED: The DAG failed" in out.splitlines()[-1]


# --- Bad input: a clear message, nothing sent ----------------------------------------------------------

KUBEFLOW_BAD = [
    (["--param", REGISTRY, "--param", "epoch=3"], "has no parameter epoch; its parameters:"),
    (["--param", REGISTRY, "--param", "epochs=many"], "parameter epochs (NUMBER_INTEGER): 'many' is not an integer"),
    (["--param", "epochs=3"], "needs registry_root (--param registry_root=...)"),
    (["--param", "registry_root=./local"], "a local path lives only as long as the task's pod"),
    (["--param", REGISTRY, "--param", "epochs"], "--param 'epochs': expected NAME=VALUE"),
    (["--param", REGISTRY, "--param", REGISTRY], "--param registry_root given twice"),
    (["--param", REGISTRY, "--schedule", "0 3 * * *"], "KFP cron has 6 fields with seconds first"),
    (["--param", REGISTRY, "--schedule", "0 0 25 * * *"], "hours '25' is outside 0-23"),
    (["--param", REGISTRY, "--schedule", "0 0 3 * * *", "--wait"], "--wait follows one run"),
    (["--param", REGISTRY, "--project", "p"], "--project do not apply to the kubeflow target"),
]


@pytest.mark.parametrize(("extra", "message"), KUBEFLOW_BAD)
def test_kubeflow_bad_input_is_refused_before_anything_is_sent(fake_kfp, kfpkit_submit, extra, message):
    status, out, err = kfpkit_submit(kubeflow_argv(fake_kfp, *extra))
    assert status == 2
    assert message in err
    assert out == ""
    assert fake_kfp.requests == []


def test_a_training_run_without_its_data_and_model_name_is_refused_before_anything_is_sent(fake_kfp, kfpkit_submit):
    status, out, err = kfpkit_submit(kubeflow_argv(fake_kfp, "--param", REGISTRY, data=False))
    assert status == 2 and out == ""
    assert "needs label_column, model_name, source (--param label_column=... --param model_name=..." in err
    assert fake_kfp.requests == []


def test_an_unknown_pipeline_is_refused_before_anything_is_sent(fake_kfp, kfpkit_submit):
    status, _, err = kfpkit_submit(["nosuch", *kubeflow_argv(fake_kfp, "--param", REGISTRY)[1:]])
    assert status == 2
    assert "unknown pipeline 'nosuch'; expected one of" in err
    assert fake_kfp.requests == []


def test_kfp_cron_5_field_error_offers_the_6_field_spelling():
    with pytest.raises(SubmitError, match=r"did you mean '0 0 3 \* \* \*'"):
        cron.check_kubeflow_cron("0 3 * * *")


VERTEX_BAD = [
    (["--schedule", "0 0 3 * * *"], "Vertex AI cron has 5 fields (MIN HOUR DOM MON DOW), no seconds"),
    (["--schedule", "TZ=Mars/Olympus 0 3 * * *"], "unknown time zone 'Mars/Olympus'"),
    (["--schedule", "0 3 * 13 *"], "month '13' is outside 1-12"),
    (["--labels", "Team=fraud"], "key 'Team' must start with a lowercase letter"),
    (["--labels", "team"], "--labels 'team': expected NAME=VALUE"),
    (["--pipeline-root", "/tmp/root"], "Vertex AI needs a gs:// pipeline root"),
    (["--project", ""], "--project is required for the vertex target"),
    (["--namespace", "x"], "--namespace do not apply to the vertex target"),
]


@pytest.mark.parametrize(("extra", "message"), VERTEX_BAD)
def test_vertex_bad_input_is_refused_before_anything_is_sent(fake_vertex, kfpkit_submit, extra, message):
    status, _, err = kfpkit_submit(vertex_argv(fake_vertex, "--param", REGISTRY, *extra))
    assert status == 2
    assert message in err
    assert fake_vertex.requests == []


def test_vertex_registry_root_must_be_on_gcs(fake_vertex, kfpkit_submit):
    status, _, err = kfpkit_submit(vertex_argv(fake_vertex, "--param", "registry_root=s3://bucket/models"))
    assert status == 2
    assert "Vertex AI runs need a gs:// registry root" in err
    assert fake_vertex.requests == []


# --- --params-file: a YAML or JSON mapping of parameters, overridden by --param ---------------------------


def kubeflow_file_argv(fake, path, *extra):
    return kubeflow_argv(fake, "--params-file", str(path), *extra, data=False)


TRAINING_YAML = """\
# the nightly training run
registry_root: gs://kfpkit-test/registry
source: gs://kfpkit-test/data/transactions.parquet
label_column: is_fraud
model_name: fraud
epochs: 3
learning_rate: 1e-3     # a string to YAML 1.1: read like --param text
fail_on_anomalies: true
"""


def test_params_file_alone_gives_the_run_its_typed_parameters(fake_kfp, kfpkit_submit, tmp_path):
    path = tmp_path / "training.yaml"
    path.write_text(TRAINING_YAML)
    status, _, err = kfpkit_submit(kubeflow_file_argv(fake_kfp, path))
    assert status == 0, err
    assert fake_kfp.problems == []
    (run,) = fake_kfp.runs.values()
    assert run["runtime_config"]["parameters"] == {
        "registry_root": "gs://kfpkit-test/registry",
        **DATA,
        "epochs": 3,
        "learning_rate": 0.001,
        "fail_on_anomalies": True,
    }


def test_param_flags_override_the_params_file(fake_vertex, kfpkit_submit, tmp_path):
    path = tmp_path / "training.json"
    path.write_text(json.dumps({"registry_root": "gs://kfpkit-test/registry", **DATA, "epochs": 3}))
    argv = vertex_argv(
        fake_vertex, "--params-file", str(path), "--param", "epochs=5", "--param", "model_name=m2", data=False
    )
    status, _, err = kfpkit_submit(argv, credentials=AnonymousCredentials())
    assert status == 0, err
    ((_, job),) = fake_vertex.jobs.items()
    values = dict(job.runtime_config.parameter_values)
    assert values["epochs"] == 5 and values["model_name"] == "m2" and values["label_column"] == "is_fraud"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epoch: 3\n", "has no parameter epoch; its parameters:"),
        ("epochs: 2.5\n", "parameter epochs (NUMBER_INTEGER): 2.5 is not an integer"),
        ("epochs: many\n", "parameter epochs (NUMBER_INTEGER): 'many' is not an integer"),
        ("source: 3\n", "parameter source (STRING): 3 is not a string"),
        ("epochs: [3\n", "not YAML or JSON: expected ',' or ']', but got '<stream end>' (line 2, column 1)"),
        ("epochs: 3\nepochs: 4\n", "key 'epochs' given twice (line 2, column 1)"),
        ("- epochs\n", "expected a mapping of parameter names to values, not a list"),
    ],
)
def test_a_bad_params_file_is_refused_naming_the_file_before_anything_is_sent(
    fake_kfp, kfpkit_submit, tmp_path, text, message
):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    status, out, err = kfpkit_submit(kubeflow_file_argv(fake_kfp, path, "--param", REGISTRY))
    assert status == 2 and out == ""
    assert f"kfpkit submit: params file {path}: " in err and message in err
    assert fake_kfp.requests == []


def test_a_missing_params_file_is_refused_before_anything_is_sent(fake_kfp, kfpkit_submit, tmp_path):
    status, _, err = kfpkit_submit(kubeflow_file_argv(fake_kfp, tmp_path / "nope.yaml"))
    assert status == 2 and f"params file {tmp_path / 'nope.yaml'}: No such file or directory" in err
    assert fake_kfp.requests == []


# --- The argument checks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression", ["0 0 3 * * *", "*/30 * * * * ?", "0 0 9 ? * 2-6", "0 0 0 1,15 JAN-JUN *", "@daily"]
)
def test_kfp_cron_accepts_robfig_cron_expressions(expression):
    assert cron.check_kubeflow_cron(expression) == expression


@pytest.mark.parametrize("expression", ["0 3 * * *", "*/15 9-17 * * MON-FRI", "CRON_TZ=America/New_York 0 6 1 * *"])
def test_vertex_cron_accepts_unix_cron_with_an_optional_time_zone(expression):
    assert cron.check_vertex_cron(expression) == expression


@pytest.fixture(scope="module")
def training_parameters(tmp_path_factory):
    """The parameters the compiled training pipeline declares (compiled once for these tests)."""
    values = {"registry_root": "gs://b/r", **DATA}
    return prepare("training", "kubeflow", str(tmp_path_factory.mktemp("build")), values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": "2.5"}, "parameter epochs (NUMBER_INTEGER): '2.5' is not an integer"),
        ({"fail_on_anomalies": "yes"}, "parameter fail_on_anomalies (BOOLEAN): 'yes' is not true or false"),
        ({"learning_rate": "fast"}, "parameter learning_rate (NUMBER_DOUBLE): 'fast' is not a number"),
        ({"learning_rate": "nan"}, "'nan' is not a finite number"),
        ({"source": 3}, "parameter source (STRING): 3 is not a string"),
    ],
)
def test_parameter_values_must_have_the_type_the_compiled_spec_declares(training_parameters, values, message):
    parameters = spec_parameters(training_parameters.pipeline_spec)
    with pytest.raises(ParameterError) as raised:
        check_parameters(parameters, {"registry_root": "gs://b/r", **DATA, **values}, "training")
    assert message in str(raised.value)


def test_strings_become_the_declared_types(training_parameters):
    parameters = spec_parameters(training_parameters.pipeline_spec)
    values = {"registry_root": "gs://b/r", **DATA, "epochs": "5", "eval_fraction": "0.25", "fail_on_anomalies": "False"}
    assert check_parameters(parameters, values, "training") == {
        "registry_root": "gs://b/r",
        **DATA,
        "epochs": 5,
        "eval_fraction": 0.25,
        "fail_on_anomalies": False,
    }
    assert parameters["registry_root"].required and not parameters["epochs"].required


def test_typed_python_values_are_checked_like_strings():
    parameters = {
        "epochs": Parameter("epochs", "NUMBER_INTEGER", required=False, default=8),
        "rate": Parameter("rate", "NUMBER_DOUBLE", required=False, default=0.1),
    }
    assert check_parameters(parameters, {"epochs": 3, "rate": 1}, "p") == {"epochs": 3, "rate": 1.0}
    with pytest.raises(ParameterError, match=r"parameter epochs \(NUMBER_INTEGER\): True is not an integer"):
        check_parameters(parameters, {"epochs": True}, "p")


def test_the_argument_checks_import_neither_kfp_nor_the_cloud_clients():
    code = (
        "import sys\n"
        "from kfpkit.cli import submit\n"
        "from kfpkit.pipelines.parameters import parse_assignments\n"
        "from kfpkit.pipelines.submit import cron, vertex\n"
        "cron.check_kubeflow_cron('0 0 3 * * *'); cron.check_vertex_cron('0 3 * * *')\n"
        "vertex.parse_labels('team=fraud'); parse_assignments(['a=1'])\n"
        "heavy = ('kfp', 'kfp_server_api', 'google.cloud.aiplatform', 'google.cloud.aiplatform_v1', 'kubernetes')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- The fakes can fail --------------------------------------------------------------------------------


def test_fake_kfp_rejects_a_run_body_its_client_models_do_not_allow(fake_kfp):
    url = fake_kfp.url + "/apis/v2beta1/runs"
    answer = requests.post(url, json={"display_name": "x", "runtime_config": {"parameters": {}, "root": "gs://b"}})
    assert answer.status_code == 400
    assert "unknown field 'root'" in answer.json()["message"]
    answer = requests.post(url, json={"display_name": 7})
    assert answer.status_code == 400 and "expected str" in answer.json()["message"]
    assert len(fake_kfp.problems) == 2


def test_fake_vertex_rejects_a_pipeline_job_with_an_unknown_field(fake_vertex):
    url = fake_vertex.url + "/v1/projects/p/locations/us-central1/pipelineJobs"
    answer = requests.post(url, json={"displayName": "x", "runtimeConfig": {"gcsOutputDir": "gs://b"}})
    assert answer.status_code == 400
    assert "gcsOutputDir" in answer.json()["error"]["message"]
    assert fake_vertex.problems
