"""The demo summary (``demo_summary.json`` of ``make demo``): one typed, versioned record.

:class:`demo.stages.Demo` fills a :class:`DemoSummary` stage by stage and rewrites the file after
each (:func:`kfpkit.core.records.write_record`); readers use :func:`kfpkit.core.records.read_record`. The
README documents the keys ("Demo summary JSON"). Each stage's entry holds the figures of that stage only:
the rollout's are in ``rollout``, the monitor's in ``drift``; a stage that has not run (yet) is ``null``. Every
key is always written, so a reader refuses a document that lacks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional

from kfpkit.core.records import Record, RecordError

STATUSES = ("running", "succeeded", "failed", "interrupted")


@dataclass
class TrainingStage:
    """``train_v1`` / ``train_v2``: a training pipeline run that pushed a version.

    Attributes:
        status: ``succeeded`` (a stage is recorded when it succeeds).
        duration_s: Wall time of the stage.
        run_dir: The kfp.local run folder.
        model_uri: The version push reported.
        model_version: Its number.
        model_created: Whether this run's push created it (``False``: an equal version was reused).
        pr_auc: evaluate's PR-AUC on the test split.
        serving_url: nginx's URL, serving this version (``train_v1``).
        prometheus_url: Prometheus' URL (``train_v1``).
        baseline_pr_auc: The previous version's PR-AUC on the same split (``train_v2``).
    """

    status: str
    duration_s: float
    run_dir: Optional[str]
    model_uri: str
    model_version: int
    model_created: bool
    pr_auc: Optional[float]
    serving_url: Optional[str]
    prometheus_url: Optional[str]
    baseline_pr_auc: Optional[float]


@dataclass
class CanaryStage:
    """``canary``: the replayed traffic of the canary analysis (its decision is the summary's ``rollout``).

    Attributes:
        status: ``succeeded``.
        duration_s: Wall time of the stage.
        requests: Requests the replayer sent.
        non_200: Of them, answered with another status than 200.
    """

    status: str
    duration_s: float
    requests: int
    non_200: int


@dataclass
class DriftedTrafficStage:
    """``drifted_traffic``: drifted rows replayed to the serving version with the payload log on.

    Attributes:
        status: ``succeeded``.
        duration_s: Wall time of the stage.
        requests: Requests sent.
        answered: Requests answered with 200.
        rows: Rows scored (answered requests × batch size).
        drift: The synthetic source's drift knob.
        since: Start of the window in the payload log (ISO-8601).
        payload_log: The payload log's folder.
    """

    status: str
    duration_s: float
    requests: int
    answered: int
    rows: int
    drift: float
    since: str
    payload_log: str


@dataclass
class MonitorStage:
    """``monitor``: the drift monitor over the drifted window (its findings are the summary's ``drift``).

    Attributes:
        status: ``succeeded``.
        duration_s: Wall time of the stage.
    """

    status: str
    duration_s: float


@dataclass
class RetrainStage:
    """``retrain``: the monitoring pipeline run.

    Attributes:
        status: ``succeeded``.
        duration_s: Wall time of the stage.
        run_dir: The kfp.local run folder.
        retrained: Whether its nested training pipeline ran.
        tasks: The tasks that finished.
        source: The data it would retrain on.
        pr_auc: evaluate's PR-AUC of the retrained model on the test split.
        model_uri: The version push reported, when it pushed one.
        model_version: Its number.
    """

    status: str
    duration_s: float
    run_dir: Optional[str]
    retrained: bool
    tasks: List[str]
    source: str
    pr_auc: Optional[float]
    model_uri: Optional[str]
    model_version: Optional[int]


@dataclass
class DemoStages:
    """Every stage's entry, ``None`` until the stage has succeeded."""

    train_v1: Optional[TrainingStage]
    train_v2: Optional[TrainingStage]
    canary: Optional[CanaryStage]
    drifted_traffic: Optional[DriftedTrafficStage]
    monitor: Optional[MonitorStage]
    retrain: Optional[RetrainStage]


@dataclass
class ModelVersionEntry:
    """A version the demo trained: ``v1``, ``v2``, ``v3``.

    Attributes:
        version: The registry version number.
        uri: The registry version URI.
        source: The data it was trained on.
        pr_auc: evaluate's PR-AUC on the test split.
    """

    version: int
    uri: str
    source: str
    pr_auc: Optional[float]


@dataclass
class DemoRollout:
    """What the canary analysis decided (the full record is the rollout record at ``record_json``).

    Attributes:
        decision: ``promote`` or ``rollback``.
        reason: Why.
        stable_version: The stable version's number.
        canary_version: The canary's number.
        intervals: Intervals analysed before the decision.
        weights: The canary's traffic share at each of them.
        verdicts: Each interval's verdict (``pass``, ``fail``, ``inconclusive``).
        final_traffic: ``{version: percent}`` after the decision.
        serving_version: The version serving afterwards.
        record_json: The rollout record (JSON).
        record_md: The rollout record (Markdown).
    """

    decision: str
    reason: str
    stable_version: int
    canary_version: int
    intervals: int
    weights: List[int]
    verdicts: List[str]
    final_traffic: Dict[str, int]
    serving_version: int
    record_json: str
    record_md: str


@dataclass
class DemoDrift:
    """What the monitor found in the drifted window (the full drift summary is at ``summary_json``).

    Attributes:
        drift_detected: Whether any feature or the score drifted.
        drifted_features: The drifted features, most drifted first.
        score_drifted: Whether the score distribution drifted.
        rows: Rows in the window.
        model_uri: The version monitored.
        since: Start of the window (ISO-8601).
        report_html: The HTML report.
        summary_json: The drift summary.
        drift_json: The per-feature drift JSON.
    """

    drift_detected: bool
    drifted_features: List[str]
    score_drifted: bool
    rows: int
    model_uri: str
    since: str
    report_html: Optional[str]
    summary_json: Optional[str]
    drift_json: Optional[str]


@dataclass
class DemoSummary(Record):
    """The demo's machine-readable outcome (README "Demo summary JSON").

    Attributes:
        status: ``running``, then ``succeeded``, ``failed`` or ``interrupted``.
        failed_stage: The stage that failed or was interrupted.
        error: Why.
        work_dir: Where everything is.
        registry_root: The demo's registry.
        model_name: The model's name.
        log: The demo log (the pipelines' progress).
        stages: Every stage's figures.
        model_versions: ``v1``, ``v2`` and ``v3`` (when retrained).
        rollout: The canary decision (``None`` before the canary stage).
        drift: The monitor's findings (``None`` before the monitor stage).
        duration_s: Wall time (``None`` while running).
    """

    KIND: ClassVar[str] = "demo summary"
    VERSION: ClassVar[int] = 2

    status: str
    failed_stage: Optional[str]
    error: Optional[str]
    work_dir: str
    registry_root: str
    model_name: str
    log: str
    stages: DemoStages
    model_versions: Dict[str, ModelVersionEntry]
    rollout: Optional[DemoRollout]
    drift: Optional[DemoDrift]
    duration_s: Optional[float]

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise RecordError(f"status must be one of {list(STATUSES)}, got {self.status!r}")

    @classmethod
    def started(cls, work_dir: str, registry_root: str, model_name: str, log: str) -> DemoSummary:
        """The summary of a demo that has just started: ``running``, no stage done yet."""
        stages = DemoStages(None, None, None, None, None, None)
        return cls("running", None, None, work_dir, registry_root, model_name, log, stages, {}, None, None, None)
