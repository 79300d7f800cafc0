"""Run kfpkit pipelines on one machine with kfp.local (no cluster, no Docker).

Every task runs as a subprocess of the current interpreter (``SubprocessRunner(use_venv=False)``), so
the environment that runs ``kfpkit run`` must have kfpkit and the component dependencies installed (the
main ``.venv``). The validate task starts the TFDV interpreter for the TFDV work itself (see
``components/validate``); ``tfdv_python`` selects it.

After the run, :func:`summarize_run` reads each task's ``executor_output.json`` under the pipeline root
and builds the **run summary** (a stable, documented contract; see README "Run summary JSON").
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Optional

SUMMARY_VERSION = 1
log = logging.getLogger("kfpkit.run")


@dataclass
class TaskRecord:
    name: str
    directory: str
    parameters: Dict[str, Any]
    artifacts: Dict[str, Dict[str, Any]]  # output name -> {"uri": ..., "metadata": {...}}


def read_run_tasks(run_dir: str) -> Dict[str, TaskRecord]:
    """The finished tasks of a kfp.local run directory, by task name."""
    tasks: Dict[str, TaskRecord] = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "**", "executor_output.json"), recursive=True)):
        directory = os.path.dirname(path)
        with open(path, encoding="utf-8") as fh:
            output = json.load(fh)
        artifacts = {}
        for name, value in output.get("artifacts", {}).items():
            items = value.get("artifacts", [])
            if items:
                artifacts[name] = {"uri": items[0].get("uri"), "metadata": items[0].get("metadata", {})}
        name = os.path.basename(directory)
        tasks[name] = TaskRecord(name, directory, output.get("parameterValues", {}), artifacts)
    return tasks


def _latest_run_dir(pipeline_root: str, pipeline_name: str, started: float) -> Optional[str]:
    candidates = [
        d
        for d in glob.glob(os.path.join(pipeline_root, f"{pipeline_name}-*"))
        if os.path.isdir(d) and os.path.getmtime(d) >= started - 1
    ]
    return max(candidates, key=os.path.getmtime) if candidates else None


def _local_path(uri: Optional[str]) -> Optional[str]:
    return uri[len("file://") :] if uri and uri.startswith("file://") else uri


def _bool_output(task: TaskRecord, name: str) -> bool:
    """A component's bool result: its single ``Output`` (or a NamedTuple field called ``name``)."""
    return bool(task.parameters.get("Output", task.parameters.get(name, False)))


def summarize_run(run_dir: Optional[str], pipeline_root: str, succeeded: bool, duration_s: float) -> Dict[str, Any]:
    """Builds the run summary from a kfp.local run directory (``None``: the run never started)."""
    tasks = read_run_tasks(run_dir) if run_dir else {}
    summary: Dict[str, Any] = {
        "summary_version": SUMMARY_VERSION,
        "status": "succeeded" if succeeded else "failed",
        "blessed": False,
        "blessing_reasons": [],
        "infra_blessed": None,
        "model_uri": None,
        "model_version": None,
        "metrics": {},
        "baseline_metrics": None,
        "validation": None,
        "tasks": sorted(tasks),
        "pipeline_root": os.path.abspath(pipeline_root),
        "run_dir": os.path.abspath(run_dir) if run_dir else None,
        "artifacts": {
            f"{t.name}.{name}": _local_path(a["uri"]) for t in tasks.values() for name, a in sorted(t.artifacts.items())
        },
        "duration_s": round(duration_s, 2),
    }
    validate = tasks.get("validate")
    if validate:
        anomalies_meta = validate.artifacts.get("anomalies", {}).get("metadata", {})
        summary["validation"] = {
            "passed": _bool_output(validate, "passed"),
            "anomalies": anomalies_meta.get("anomalies", {}),
        }
    evaluate = tasks.get("evaluate")
    if evaluate:
        meta = evaluate.artifacts.get("metrics", {}).get("metadata", {})
        summary["blessed"] = _bool_output(evaluate, "blessed")
        summary["blessing_reasons"] = list(meta.get("reasons", []))
        numbers = {
            k: v for k, v in meta.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "blessed"
        }
        summary["metrics"] = {k: v for k, v in numbers.items() if not k.startswith("baseline_")}
        baseline = {k[len("baseline_") :]: v for k, v in numbers.items() if k.startswith("baseline_")}
        summary["baseline_metrics"] = baseline or None
    infra = tasks.get("infra-validate")
    if infra:
        summary["infra_blessed"] = _bool_output(infra, "infra_blessed")
    push = tasks.get("push")
    if push:
        summary["model_uri"] = push.parameters.get("model_uri")
        version = push.parameters.get("version")
        summary["model_version"] = int(version) if version is not None else None
    return summary


def run_training_locally(
    source: str,
    label_column: str,
    registry_root: str,
    pipeline_root: str = "./local_outputs",
    tfdv_python: Optional[str] = None,
    **parameters: Any,
) -> Dict[str, Any]:
    """Runs the training pipeline with kfp.local and returns the run summary.

    Args:
        source: Data source URI (see the ingest component).
        label_column: Binary label column.
        registry_root: Model registry root.
        pipeline_root: Where kfp.local writes task outputs.
        tfdv_python: Interpreter of the TFDV environment (default: found by the validate component).
        **parameters: Any other training pipeline parameter (``framework``, ``epochs``, ...).
    """
    from kfp import local

    from kfpkit.pipelines.training import PIPELINE_NAME, build_training_pipeline

    if tfdv_python:
        os.environ["KFPKIT_TFDV_PYTHON"] = os.path.abspath(tfdv_python)
    pipeline_root = os.path.abspath(pipeline_root)
    os.makedirs(pipeline_root, exist_ok=True)
    registry_root = registry_root if "://" in registry_root else os.path.abspath(registry_root)
    # The tasks name kfpkit's images; locally the .venv *is* that environment, so kfp.local's warning
    # about running a non-Python base image in a Python environment does not apply.
    warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*", category=RuntimeWarning)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=pipeline_root, raise_on_error=False)
    pipeline = build_training_pipeline()
    started = time.time()
    succeeded = True
    try:
        pipeline(source=source, label_column=label_column, registry_root=registry_root, **parameters)
    except Exception as exc:  # kfp.local raises on task failure when raise_on_error is set by others
        log.error("pipeline failed: %s", exc)
        succeeded = False
    duration = time.time() - started
    run_dir = _latest_run_dir(pipeline_root, PIPELINE_NAME, started)
    summary = summarize_run(run_dir, pipeline_root, succeeded, duration)
    if succeeded and not _all_expected_tasks_finished(summary):
        summary["status"] = "failed"
    return summary


def _all_expected_tasks_finished(summary: Dict[str, Any]) -> bool:
    """With raise_on_error=False kfp.local only logs a failed task: detect it from the missing outputs."""
    tasks = set(summary["tasks"])
    if not {"ingest", "validate"} <= tasks:
        return False
    if summary["validation"] and summary["validation"]["passed"]:
        if not {"train", "evaluate", "infra-validate"} <= tasks:
            return False
        if summary["blessed"] and summary["infra_blessed"] and "push" not in tasks:
            return False
    return True


def format_summary(summary: Dict[str, Any]) -> str:
    """A readable multi-line summary for the terminal."""
    lines = [f"kfpkit training run: {summary['status'].upper()} in {summary['duration_s']:.1f} s"]
    validation = summary.get("validation")
    if validation is not None:
        lines.append(f"  data validation: {'passed' if validation['passed'] else 'FAILED'}")
        for feature, description in sorted(validation["anomalies"].items()):
            lines.append(f"    - {feature}: {description}")
        if not validation["passed"]:
            lines.append("  training skipped: the data did not pass validation")
    metrics = summary.get("metrics") or {}
    if metrics:
        keys = [
            k
            for k in ("pr_auc", "roc_auc", "log_loss", "brier_score", "precision", "recall", "f1", "decision_threshold")
            if k in metrics
        ]
        lines.append("  eval metrics: " + ", ".join(f"{k}={metrics[k]:.4f}" for k in keys))
    if summary.get("baseline_metrics"):
        base = summary["baseline_metrics"]
        lines.append(
            "  baseline:     " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(base.items()) if isinstance(v, float))
        )
    if "evaluate" in summary["tasks"]:
        lines.append(f"  blessed: {'yes' if summary['blessed'] else 'no'}")
        for reason in summary["blessing_reasons"]:
            lines.append(f"    - {reason}")
    if summary.get("infra_blessed") is not None:
        lines.append(f"  serves in KServe: {'yes' if summary['infra_blessed'] else 'no'}")
    if summary.get("model_uri"):
        lines.append(f"  pushed: {summary['model_uri']} (version {summary['model_version']})")
    else:
        lines.append("  pushed: nothing")
    if summary.get("run_dir"):
        lines.append(f"  artifacts: {summary['run_dir']}")
    return "\n".join(lines)
