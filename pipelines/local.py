"""Run kfpkit pipelines on one machine with kfp.local (no cluster, no Docker), quietly, with progress.

Every task runs as a subprocess of the current interpreter (``SubprocessRunner(use_venv=False)``), so
the environment that runs ``kfpkit run`` must have kfpkit and the component dependencies installed (the
main ``.venv``). The validate task starts the TFDV interpreter for the TFDV work itself (see
``components/validate``); ``tfdv_python`` selects it. With ``runner="docker"`` (``kfpkit run --runner
docker``) every task runs in its image instead, through kfp.local's ``DockerRunner``
(:mod:`kfpkit.pipelines.local_docker`); the output, the run log and the summary are the same.

**Quiet output.** kfp.local writes everything (its own log records, every task's streamed subprocess
output, the executor input and output dumps) to ``sys.stdout`` through ``logging`` and ``print`` in the
thread that runs the task. :func:`run_pipeline_locally` replaces ``sys.stdout``/``sys.stderr`` and the
root logger's handlers for the duration of the run with a :class:`RunLog`, which

* writes every line, without ANSI colours and prefixed ``[task]`` when a task's thread wrote it, to the
  run log (``--verbose`` streams the same lines to the terminal);
* turns kfp.local's ``Executing task 'x'`` / ``Task 'x' finished with status ...`` records into one
  progress line when a task starts and one when it ends, the latter with the task's key outputs read
  from its ``executor_output.json`` (rows, PR-AUC, blessed, version, ...);
* prints, when a task fails, the last :data:`FAILED_TAIL_LINES` non-blank lines that task wrote and the log's
  path.

The run log starts as ``<pipeline_root>/<pipeline>-<UTC timestamp>.run.log`` (kfp.local names the run
folder itself, once the run has started) and is moved to ``<run_dir>/run.log`` as soon as that folder
appears; a run that fails before its first task keeps the log beside the run folders.

After the run, :func:`summarize_run` reads each task's ``executor_output.json`` under the run folder and
builds the **run summary**, a :class:`kfpkit.core.run_summary.RunSummary` record (a stable, documented
contract; see README "Run summary JSON").
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import functools
import glob
import io
import json
import logging
import os
import re
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Iterator, List, Optional, TextIO, Tuple

from kfpkit.core.run_summary import RunSummary, ValidationOutcome

if TYPE_CHECKING:
    from kfpkit.core.registry import PushedModel
    from kfpkit.pipelines.local_docker import DockerRun

FAILED_TAIL_LINES = 20
RUN_LOG = "run.log"
RUNNERS = ("subprocess", "docker")  # kfp.local's SubprocessRunner, DockerRunner
log = logging.getLogger("kfpkit.run")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TASK_STARTED = re.compile(r" - INFO - Executing task '(?P<task>[^']+)'$")
_TASK_FINISHED = re.compile(r" - (?:INFO|ERROR) - Task '(?P<task>[^']+)' finished with status (?P<status>[A-Z]+)$")
_TASK_EXCEPTION = re.compile(r"Task (?P<task>\S+) failed with exception: ")
_PIPELINE_FINISHED = re.compile(
    r" - (?:INFO|ERROR) - Pipeline '(?P<pipeline>[^']+)' finished with status (?P<status>[A-Z]+)"
)
_RULE = re.compile(r"^-{20,}$")

SPLIT_ORDER = ("train", "eval", "test")
# The bool result (``-> bool``, kfp's ``Output``) of a task, in words: (true, false).
RESULT_WORDS = {
    "validate": ("data valid", "data INVALID"),
    "evaluate": ("blessed", "NOT blessed"),
    "infra-validate": ("serves in KServe", "does NOT serve in KServe"),
}


@dataclass
class TaskRecord:
    """One finished task of a kfp.local run: its folder and what its ``executor_output.json`` holds."""

    name: str
    directory: str
    parameters: Dict[str, Any]
    artifacts: Dict[str, Dict[str, Any]]  # output name -> {"uri": ..., "metadata": {...}}


def read_task(directory: str) -> Optional[TaskRecord]:
    """The task whose folder is ``directory`` (``None`` while it has no ``executor_output.json``)."""
    path = os.path.join(directory, "executor_output.json")
    try:
        with open(path, encoding="utf-8") as fh:
            output = json.load(fh)
    except (OSError, json.JSONDecodeError):
        return None
    artifacts = {}
    for name, value in output.get("artifacts", {}).items():
        items = value.get("artifacts", [])
        if items:
            artifacts[name] = {"uri": items[0].get("uri"), "metadata": items[0].get("metadata", {})}
    return TaskRecord(os.path.basename(directory), directory, output.get("parameterValues", {}), artifacts)


def read_run_tasks(run_dir: str) -> Dict[str, TaskRecord]:
    """The finished tasks of a kfp.local run folder, by task name."""
    tasks: Dict[str, TaskRecord] = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "**", "executor_output.json"), recursive=True)):
        task = read_task(os.path.dirname(path))
        if task:
            tasks[task.name] = task
    return tasks


def _local_path(uri: Optional[str]) -> Optional[str]:
    return uri[len("file://") :] if uri and uri.startswith("file://") else uri


def _bool_output(task: TaskRecord, name: str) -> bool:
    """A component's bool result: its single ``Output`` (or a NamedTuple field called ``name``)."""
    return bool(task.parameters.get("Output", task.parameters.get(name, False)))


def _numbers(metadata: Dict[str, Any]) -> Dict[str, float]:
    return {k: v for k, v in metadata.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def training_metrics(train: Optional[TaskRecord]) -> Optional[Dict[str, Dict[str, float]]]:
    """The model card's metrics of the trained model, by split (``{"eval": {...}}``); ``None`` if unreadable."""
    model = (train.artifacts.get("model") if train else None) or {}
    directory = _local_path(model.get("uri"))
    if not directory or not os.path.isdir(directory):
        return None
    from kfpkit.core.model_card import ModelCardError, read_model_card

    try:
        card = read_model_card(directory)
    except ModelCardError as exc:
        log.warning("run summary: no training metrics: %s", exc)
        return None
    return {split: _numbers(values) for split, values in sorted(card.metrics.items())} or None


def summarize_run(
    run_dir: Optional[str],
    pipeline_root: str,
    succeeded: bool,
    duration_s: float,
    pipeline: str = "training",
    run_log: Optional[str] = None,
    failed_task: Optional[str] = None,
) -> RunSummary:
    """Builds the run summary from a kfp.local run folder (``None``: the run never started a task)."""
    tasks = read_run_tasks(run_dir) if run_dir else {}
    summary = RunSummary(
        pipeline=pipeline,
        status="succeeded" if succeeded else "failed",
        failed_task=failed_task,
        blessed=False,
        blessing_reasons=[],
        infra_blessed=None,
        model_uri=None,
        model_version=None,
        model_created=None,
        metrics={},
        metrics_split=None,
        baseline_metrics=None,
        training_metrics=training_metrics(tasks.get("train")),
        validation=None,
        tasks=sorted(tasks),
        pipeline_root=os.path.abspath(pipeline_root),
        run_dir=os.path.abspath(run_dir) if run_dir else None,
        run_log=os.path.abspath(run_log) if run_log else None,
        artifacts={
            f"{t.name}.{name}": _local_path(a["uri"]) for t in tasks.values() for name, a in sorted(t.artifacts.items())
        },
        duration_s=round(duration_s, 2),
    )
    validate = tasks.get("validate")
    if validate:
        anomalies_meta = validate.artifacts.get("anomalies", {}).get("metadata", {})
        summary.validation = ValidationOutcome(
            passed=_bool_output(validate, "passed"), anomalies=dict(anomalies_meta.get("anomalies", {}))
        )
    evaluate = tasks.get("evaluate")
    if evaluate:
        meta = evaluate.artifacts.get("metrics", {}).get("metadata", {})
        summary.blessed = _bool_output(evaluate, "blessed")
        summary.blessing_reasons = list(meta.get("reasons", []))
        numbers = {k: v for k, v in _numbers(meta).items() if k != "blessed"}
        summary.metrics = {k: v for k, v in numbers.items() if not k.startswith("baseline_")}
        # evaluate scores the held-out test split (the gate and report use it alone)
        summary.metrics_split = meta["split"] if isinstance(meta.get("split"), str) else "test"
        baseline = {k[len("baseline_") :]: v for k, v in numbers.items() if k.startswith("baseline_")}
        summary.baseline_metrics = baseline or None
    infra = tasks.get("infra-validate")
    if infra:
        summary.infra_blessed = _bool_output(infra, "infra_blessed")
    pushed = pushed_model(tasks.get("push"))
    if pushed is not None:
        summary.model_uri, summary.model_version, summary.model_created = (
            pushed.model_uri,
            pushed.version,
            pushed.created,
        )
    return summary


def pushed_model(push: Optional[TaskRecord]) -> Optional[PushedModel]:
    """The ``PushedModel`` record of a finished push task (its ``pushed_model`` output's metadata).

    Raises:
        kfpkit.core.records.RecordError: the metadata is not a pushed-model record (names the field).
    """
    from kfpkit.core.registry import PushedModel

    artifact = (push.artifacts.get("pushed_model") if push else None) or {}
    if push is None or not artifact.get("metadata"):
        return None
    return PushedModel.from_dict(artifact["metadata"], where=f"{push.directory}: pushed_model")


def task_outputs_text(task: TaskRecord) -> str:
    """The key outputs of a finished task in a few words: rows, PR-AUC, ECE, its bool result, version."""
    words: List[str] = []
    rows = []
    for name, artifact in task.artifacts.items():
        meta = artifact.get("metadata") or {}
        if isinstance(meta.get("rows"), (int, float)):
            split = meta.get("split") if isinstance(meta.get("split"), str) else name.replace("_data", "")
            rows.append((SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split, meta["rows"]))
    words += [f"{split} {int(count):,} rows" for _, split, count in sorted(rows)]
    for _, artifact in sorted(task.artifacts.items()):
        meta = artifact.get("metadata") or {}
        if isinstance(meta.get("pr_auc"), (int, float)):
            split = f" ({meta['split']})" if isinstance(meta.get("split"), str) else ""
            text = f"PR-AUC {meta['pr_auc']:.4f}"
            if isinstance(meta.get("ece"), (int, float)):
                text += f", ECE {meta['ece']:.4f}"
            words.append(text + split)
        if isinstance(meta.get("latency_p99_ms"), (int, float)):
            words.append(f"p99 {meta['latency_p99_ms']:.2f} ms")
    if isinstance(task.parameters.get("Output"), bool):
        yes, no = RESULT_WORDS.get(task.name, ("result true", "result false"))
        words.append(yes if task.parameters["Output"] else no)
    if task.parameters.get("version") is not None:
        words.append(f"version {int(task.parameters['version'])}" + _reuse_note(task))
    return ", ".join(words)


def _reuse_note(task: TaskRecord) -> str:
    """`` (already in the registry)`` after a push that found its model in an existing version."""
    from kfpkit.core.records import RecordError

    try:
        pushed = pushed_model(task) if "pushed_model" in task.artifacts else None
    except RecordError:
        return ""
    return " (already in the registry, nothing pushed)" if pushed is not None and not pushed.created else ""


@dataclass
class _TaskState:
    started: float
    thread: int
    tail: Deque[str] = field(default_factory=lambda: collections.deque(maxlen=FAILED_TAIL_LINES))
    finished: bool = False


class RunLog(io.TextIOBase):
    """The text stream that stands in for ``sys.stdout``/``sys.stderr`` during a kfp.local run.

    Args:
        path: The run log file (created; moved by :meth:`move_to`).
        progress: Where progress lines go (the terminal).
        verbose: Also copy every log line to ``progress``.
        find_task_dir: Returns a task's folder once it exists (``None`` before), to read its outputs.
        clock: Seconds, for durations (``time.monotonic``).
    """

    def __init__(
        self,
        path: str,
        progress: TextIO,
        verbose: bool = False,
        find_task_dir: Callable[[str], Optional[str]] = lambda task: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.path = path
        self._file = open(path, "w", encoding="utf-8")  # closed by close()
        self._progress = progress
        self._verbose = verbose
        self._find_task_dir = find_task_dir
        self._clock = clock
        self._start = clock()
        self._lock = threading.RLock()
        self._partial: Dict[int, str] = {}
        self._thread_task: Dict[int, str] = {}
        self.tasks: Dict[str, _TaskState] = {}
        self.failed_tasks: List[str] = []
        self.pipeline_status: Optional[str] = None
        self.on_line: Optional[Callable[[], object]] = None  # called after every line

    # -- the stream interface kfp.local, logging and print use
    def writable(self) -> bool:
        """Always true: the log is a text stream that accepts writes."""
        return True

    def write(self, text: str) -> int:
        """Takes ``text`` and handles every line it completes (lines are buffered per writing thread).

        Returns:
            ``len(text)``, as a text stream does.
        """
        with self._lock:
            thread = threading.get_ident()
            buffered = self._partial.pop(thread, "") + text
            *lines, rest = buffered.split("\n")
            if rest:
                self._partial[thread] = rest
            for line in lines:
                self._line(thread, line)
        return len(text)

    def flush(self) -> None:
        """Flushes the log file (a no-op once it is closed)."""
        with self._lock:
            if not self._file.closed:
                self._file.flush()

    def close(self) -> None:
        """Handles every thread's unfinished last line, then closes the log file."""
        with self._lock:
            for thread, rest in list(self._partial.items()):
                self._line(thread, rest)
            self._partial.clear()
            if not self._file.closed:
                self._file.close()
        super().close()

    def move_to(self, path: str) -> None:
        """Moves the log file to ``path`` (same file system: the open file keeps being written)."""
        with self._lock:
            self._file.flush()
            os.replace(self.path, path)
            self.path = path

    # -- progress
    def say(self, text: str) -> None:
        """Prints one progress line, stamped with the seconds since the run started."""
        with self._lock:
            self._progress.write(f"[{self._clock() - self._start:6.1f}s] {text}\n")
            self._progress.flush()

    def _line(self, thread: int, raw: str) -> None:
        line = _ANSI.sub("", raw).rstrip("\r")
        task = self._thread_task.get(thread)
        started = _TASK_STARTED.search(line)
        if started:
            task = started["task"]
            self._thread_task[thread] = task
            self.tasks[task] = _TaskState(started=self._clock(), thread=thread)
        self._file.write(f"[{task}] {line}\n" if task else f"{line}\n")
        if self._verbose:
            self._progress.write(raw + "\n")
        if self.on_line:
            self.on_line()
        if started:
            self.say(f"{task:<16} started")
            return
        state = self.tasks.get(task) if task else None
        finished = _TASK_FINISHED.search(line)
        if finished:
            self._finish(finished["task"], finished["status"] == "SUCCESS")
            return
        exception = _TASK_EXCEPTION.search(line)
        if exception and exception["task"] in self.tasks:
            self.tasks[exception["task"]].tail.append(line)
            self._finish(exception["task"], False)
            return
        pipeline = _PIPELINE_FINISHED.search(line)
        if pipeline:
            self.pipeline_status = pipeline["status"]
        if state and not state.finished:
            if line.strip():
                state.tail.append(line)
        elif task and _RULE.match(line):
            del self._thread_task[thread]  # kfp.local's rule after a task's outputs: back to the pipeline

    def _finish(self, task: str, succeeded: bool) -> None:
        state = self.tasks.get(task)
        if state is None or state.finished:
            return
        state.finished = True
        seconds = self._clock() - state.started
        if succeeded:
            directory = self._find_task_dir(task)
            record = read_task(directory) if directory else None
            outputs = task_outputs_text(record) if record else ""
            self.say(f"{task:<16} done in {seconds:.1f}s" + (f"  {outputs}" if outputs else ""))
            return
        self.failed_tasks.append(task)
        self.say(f"{task:<16} FAILED after {seconds:.1f}s; its last lines:")
        with self._lock:
            for text in state.tail:
                self._progress.write(f"    | {text}\n")
            self._progress.write(f"    full log: {self.path}\n")
            self._progress.flush()


@contextlib.contextmanager
def capture_run_output(run_log: RunLog) -> Iterator[RunLog]:
    """Sends ``sys.stdout``, ``sys.stderr`` and the root logger to ``run_log`` inside the block.

    kfp.local swaps the root logger's handlers around each task (from several threads), so the handlers
    and level found on entry are put back on exit whatever kfp.local left behind.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    handler = logging.StreamHandler(run_log)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(name)s: %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(run_log), contextlib.redirect_stderr(run_log):
            yield run_log
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        run_log.close()


@functools.cache
def build_pipeline(name: str):
    """The registered pipeline ``name`` for local runs (built once per process)."""
    from kfpkit.pipelines import registry

    return registry.pipeline_builder(name)()


def _new_run_dirs(pipeline_root: str, pipeline_name: str, before: set) -> List[str]:
    found = [
        d
        for d in glob.glob(os.path.join(glob.escape(pipeline_root), f"{glob.escape(pipeline_name)}-*"))
        if os.path.isdir(d) and d not in before
    ]
    return sorted(found, key=os.path.getmtime)


class RunFolder:
    """The folder that kfp.local creates for one run, found as soon as it appears; the run log moves into it.

    kfp.local names the folder itself (``<pipeline_root>/<pipeline name>-<time>``) once the run has started,
    so the run log starts beside the run folders and :meth:`find` (called on every log line) moves it in.

    Args:
        pipeline_root: Where kfp.local writes its run folders (absolute).
        pipeline_name: The pipeline's ``pipelineInfo.name``, the prefix of its run folders.
        verbose: Whether ``--verbose`` streams the log (the progress line says so otherwise).
    """

    def __init__(self, pipeline_root: str, pipeline_name: str, verbose: bool = False) -> None:
        self.pipeline_root = pipeline_root
        self.pipeline_name = pipeline_name
        self.verbose = verbose
        self.path: Optional[str] = None
        self.run_log: Optional[RunLog] = None
        self._before = set(_new_run_dirs(pipeline_root, pipeline_name, set()))

    def open_log(self, progress: TextIO) -> RunLog:
        """Creates the run log, ``<pipeline_root>/<pipeline name>-<UTC time>.run.log`` until the folder appears."""
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H-%M-%S-%f")
        path = os.path.join(self.pipeline_root, f"{self.pipeline_name}-{stamp}.run.log")
        self.run_log = RunLog(path, progress, verbose=self.verbose, find_task_dir=self.task_dir)
        self.run_log.on_line = self.find
        return self.run_log

    def find(self) -> Optional[str]:
        """The run folder once it exists (``None`` before); the first time, the run log moves into it."""
        if self.path is None:
            found = _new_run_dirs(self.pipeline_root, self.pipeline_name, self._before)
            if found:
                self.path = found[-1]
                if self.run_log is not None:
                    self.run_log.move_to(os.path.join(self.path, RUN_LOG))
                    streams = "" if self.verbose else " (--verbose streams it)"
                    self.run_log.say(f"kfp.local log: {self.run_log.path}{streams}")
        return self.path

    def task_dir(self, task: str) -> Optional[str]:
        """The folder of task ``task`` in the run folder (``None`` while there is no run folder)."""
        directory = self.find()
        return os.path.join(directory, task) if directory else None


def _run_captured(
    pipeline: Any,
    name: str,
    arguments: Dict[str, Any],
    pipeline_root: str,
    run_log: RunLog,
    docker: Optional[DockerRun] = None,
) -> Optional[BaseException]:
    """Runs ``pipeline`` with kfp.local, its output going to ``run_log``; returns the error that stopped it.

    ``docker``: run every task in its image with this prepared ``DockerRunner`` (default: subprocesses).
    """
    from kfp import local

    with capture_run_output(run_log):
        if docker is None:
            # The tasks name kfpkit's images; locally the .venv *is* that environment, so kfp.local's warning
            # about running a non-Python base image in a Python environment does not apply.
            warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*", category=RuntimeWarning)
            runner: Any = local.SubprocessRunner(use_venv=False)
        else:
            runner = docker.runner
        local.init(runner=runner, pipeline_root=pipeline_root, raise_on_error=False)
        try:
            with docker.active() if docker else contextlib.nullcontext():
                pipeline(**(docker.arguments if docker else arguments))
        except Exception as exc:  # reported by the caller and in the summary
            log.exception("pipeline %s did not run", name)
            return exc
    return None


def _prepare_docker(
    pipeline: Any, arguments: Dict[str, Any], pipeline_root: str
) -> Tuple[Optional[DockerRun], Optional[BaseException]]:
    """The prepared Docker run, or the :class:`~kfpkit.pipelines.local_docker.DockerSetupError` that refuses it."""
    from kfpkit.pipelines.local_docker import DockerSetupError, prepare_docker_run

    try:
        return prepare_docker_run(pipeline, arguments, pipeline_root), None
    except DockerSetupError as exc:
        return None, exc


def run_pipeline_locally(
    name: str,
    arguments: Dict[str, Any],
    pipeline_root: str = "./local_outputs",
    tfdv_python: Optional[str] = None,
    verbose: bool = False,
    progress: Optional[TextIO] = None,
    runner: str = "subprocess",
) -> RunSummary:
    """Runs registered pipeline ``name`` with kfp.local and returns the run summary record.

    Args:
        name: A pipeline of :func:`kfpkit.pipelines.registry.pipeline_names`.
        arguments: Pipeline parameters; those left out take the pipeline's defaults.
        pipeline_root: Where kfp.local writes task outputs (one folder per run).
        tfdv_python: Interpreter of the TFDV environment (default: found by the validate component); the
            subprocess runner only.
        verbose: Stream kfp.local's full logs, not only the progress lines.
        progress: Where progress lines go (default ``sys.stdout``).
        runner: One of :data:`RUNNERS`: ``"subprocess"`` (tasks as subprocesses of this interpreter) or
            ``"docker"`` (each task in its image; see :mod:`kfpkit.pipelines.local_docker`). A Docker run
            that cannot start (no engine, a missing image) is reported like any run that did not start.

    Raises:
        ValueError: ``runner`` is unknown, or ``tfdv_python`` is given with the docker runner.
    """
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; known runners: {', '.join(RUNNERS)}")
    if tfdv_python and runner != "subprocess":
        raise ValueError("tfdv_python applies to the subprocess runner only (validate runs in the tfdv image)")
    progress = progress or sys.stdout
    pipeline = build_pipeline(name)
    if tfdv_python:
        os.environ["KFPKIT_TFDV_PYTHON"] = os.path.abspath(tfdv_python)
    pipeline_root = os.path.abspath(pipeline_root)
    os.makedirs(pipeline_root, exist_ok=True)
    folder = RunFolder(pipeline_root, pipeline.pipeline_spec.pipeline_info.name, verbose=verbose)
    run_log = folder.open_log(progress)
    how = "DockerRunner (each task in its image)" if runner == "docker" else "SubprocessRunner"
    progress.write(f"kfpkit run {name}: kfp.local {how}, outputs under {pipeline_root}\n")
    progress.flush()
    started = time.time()
    docker, error = _prepare_docker(pipeline, arguments, pipeline_root) if runner == "docker" else (None, None)
    if error is None:
        error = _run_captured(pipeline, name, arguments, pipeline_root, run_log, docker=docker)
    else:
        run_log.write(f"the pipeline did not run: {type(error).__name__}: {error}\n")
        run_log.close()
    duration = time.time() - started
    run_dir = folder.find()
    succeeded = error is None and run_log.pipeline_status == "SUCCESS" and not run_log.failed_tasks
    if error is not None:
        progress.write(f"kfpkit run {name}: the pipeline did not run: {type(error).__name__}: {error}\n")
        progress.write(f"    full log: {run_log.path}\n")
    summary = summarize_run(
        run_dir,
        pipeline_root,
        succeeded,
        duration,
        pipeline=name,
        run_log=run_log.path,
        failed_task=run_log.failed_tasks[0] if run_log.failed_tasks else None,
    )
    return summary


def _metric_text(metrics: Dict[str, float], keys: List[str]) -> str:
    return ", ".join(f"{k}={metrics[k]:.4f}" for k in keys if isinstance(metrics.get(k), (int, float)))


SUMMARY_METRICS = ["pr_auc", "roc_auc", "log_loss", "brier_score", "ece", "precision", "recall", "f1"]


def format_summary(summary: RunSummary) -> str:
    """A readable multi-line summary for the terminal."""
    lines = [f"kfpkit {summary.pipeline} run: {summary.status.upper()} in {summary.duration_s:.1f} s"]
    if summary.failed_task:
        lines.append(f"  failed task: {summary.failed_task}")
    lines += _validation_lines(summary)
    lines += _metric_lines(summary)
    lines += _decision_lines(summary)
    if summary.run_dir:
        lines.append(f"  artifacts: {summary.run_dir}")
    if summary.run_log:
        lines.append(f"  log: {summary.run_log}")
    return "\n".join(lines)


def _validation_lines(summary: RunSummary) -> List[str]:
    """The data validation outcome and its anomalies, when validate ran."""
    validation = summary.validation
    if validation is None:
        return []
    lines = [f"  data validation: {'passed' if validation.passed else 'FAILED'}"]
    for feature, description in sorted(validation.anomalies.items()):
        lines.append(f"    - {feature}: {description}")
    if not validation.passed:
        lines.append("  training skipped: the data did not pass validation")
    return lines


def _metric_lines(summary: RunSummary) -> List[str]:
    """Train's metrics per split, evaluate's on its split, and the latest blessed baseline's."""
    lines = []
    for split, metrics in sorted((summary.training_metrics or {}).items()):
        lines.append(f"  train, {split} split: " + _metric_text(metrics, SUMMARY_METRICS))
    if summary.metrics:
        split = summary.metrics_split or "test"
        keys = [*SUMMARY_METRICS, "decision_threshold"]
        lines.append(f"  evaluate, {split} split: " + _metric_text(summary.metrics, keys))
    if summary.baseline_metrics:
        lines.append("  baseline (latest blessed): " + _metric_text(summary.baseline_metrics, SUMMARY_METRICS))
    return lines


def _decision_lines(summary: RunSummary) -> List[str]:
    """Whether evaluate blessed the candidate (and why), whether it serves in KServe, and what push did."""
    lines = []
    if "evaluate" in summary.tasks:
        lines.append(f"  blessed: {'yes' if summary.blessed else 'no'}")
        for reason in summary.blessing_reasons:
            lines.append(f"    - {reason}")
    if summary.infra_blessed is not None:
        lines.append(f"  serves in KServe: {'yes' if summary.infra_blessed else 'no'}")
    if summary.model_uri:
        how = "" if summary.model_created else "; already in the registry, nothing pushed"
        lines.append(f"  pushed: {summary.model_uri} (version {summary.model_version}{how})")
    else:
        lines.append("  pushed: nothing")
    return lines
