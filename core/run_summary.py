"""The run summary of ``kfpkit run``: one typed, versioned record, written and read only through this class.

:func:`kfpkit.pipelines.local.summarize_run` builds a :class:`RunSummary` from a kfp.local run folder;
``kfpkit run --summary-json`` writes it (:func:`kfpkit.core.records.write_record`); the demo, the notebooks
and the tests read its attributes, or a file with :func:`kfpkit.core.records.read_record`. The JSON keys are
documented in the README ("Run summary JSON"); ``record_version`` changes when a key changes meaning or goes
away (version 3 replaced ``summary_version: 2`` by ``record``/``record_version`` and added ``model_created``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Dict, List, Optional

from kfpkit.core.records import Record, RecordError

STATUSES = ("succeeded", "failed")


@dataclass
class ValidationOutcome:
    """What validate decided about the data.

    Attributes:
        passed: Whether the data passed TFDV's checks.
        anomalies: Feature name → TFDV's description of its anomaly (empty when it passed).
    """

    passed: bool
    anomalies: Dict[str, str] = field(default_factory=dict)


@dataclass
class RunSummary(Record):
    """The machine-readable outcome of one ``kfpkit run`` (README "Run summary JSON").

    Attributes:
        pipeline: The registered pipeline that ran (``training``, ``monitoring``, ...).
        status: ``succeeded`` (every task that should have run finished) or ``failed``.
        failed_task: The first task that failed.
        blessed: evaluate's gate.
        blessing_reasons: Why (floor, regression against the baseline, calibration ceiling).
        infra_blessed: The candidate loaded and answered in KServe (``None``: not reached).
        model_uri: The registry version push reported (``None``: nothing pushed).
        model_version: Its version number.
        model_created: ``True`` when this run's push created ``model_version``; ``False`` when the version
            already held the same model and push reused it; ``None`` when nothing was pushed.
        metrics: evaluate's metrics of the candidate on ``metrics_split``.
        metrics_split: The split ``metrics`` and ``baseline_metrics`` were measured on (``test``).
        baseline_metrics: The same for the registry's latest blessed model, when there was one.
        training_metrics: The model card's metrics by split, as measured by train.
        validation: The TFDV result (``None``: validate did not run).
        tasks: The tasks that finished, sorted.
        pipeline_root: Where kfp.local wrote the run folders.
        run_dir: The run's folder (``None``: no task started).
        run_log: The run log.
        artifacts: ``task.output`` → local path of every output artifact.
        duration_s: Wall time of the pipeline run.
    """

    KIND: ClassVar[str] = "run summary"
    VERSION: ClassVar[int] = 3

    pipeline: str
    status: str
    failed_task: Optional[str]
    blessed: bool
    blessing_reasons: List[str]
    infra_blessed: Optional[bool]
    model_uri: Optional[str]
    model_version: Optional[int]
    model_created: Optional[bool]
    metrics: Dict[str, float]
    metrics_split: Optional[str]
    baseline_metrics: Optional[Dict[str, float]]
    training_metrics: Optional[Dict[str, Dict[str, float]]]
    validation: Optional[ValidationOutcome]
    tasks: List[str]
    pipeline_root: str
    run_dir: Optional[str]
    run_log: Optional[str]
    artifacts: Dict[str, Optional[str]]
    duration_s: float

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise RecordError(f"status must be one of {list(STATUSES)}, got {self.status!r}")
        pushed = (self.model_uri is not None, self.model_version is not None, self.model_created is not None)
        if len(set(pushed)) != 1:
            raise RecordError(
                "model_uri, model_version and model_created must all be set (a push) or all be null, got "
                f"{self.model_uri!r}, {self.model_version!r}, {self.model_created!r}"
            )
        if self.model_version is not None and self.model_version < 1:
            raise RecordError(f"model_version must be >= 1, got {self.model_version!r}")

    @property
    def succeeded(self) -> bool:
        """Whether every task that should have run finished."""
        return self.status == "succeeded"

    @property
    def pushed(self) -> bool:
        """Whether push ran and reported a registry version (created now or reused)."""
        return self.model_uri is not None

    @property
    def pr_auc(self) -> Optional[float]:
        """The PR-AUC that evaluate measured for the candidate on ``metrics_split``, or ``None`` when it has none."""
        return self.metrics.get("pr_auc")
