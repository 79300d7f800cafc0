"""The demo's stages (``make demo``, ``python -m demo``): the whole loop on one machine, no cluster.

Train, serve, canary, drift, retrain.

    python -m demo [--work-dir DIR] [--rows N] [--epochs N] [--framework pytorch|sklearn]
                [--steps 25,50,100] [--interval 8s] [--rps N] [--drifted-rows N] [--summary-json PATH]

Six stages, each one line of the timeline (its key figure and where its report is):

1. **train v1** with the training pipeline under kfp.local (``synthetic://fraud``, ``drift=0``), then serve
   it as the stable version behind the local traffic backend: ``kfpkit serve`` processes behind nginx's
   weighted upstream, scraped by Prometheus;
2. **train v2** on newer data (the synthetic source's drift knob, ``--v2-drift``);
3. **canary v2** with replayed live traffic (newer data) through nginx; the canary analysis reads
   Prometheus at every step and promotes, or rolls back and says why (the rollout record, JSON and Markdown);
4. **drifted traffic** (``--live-drift``) replayed through nginx to the version that serves after stage 3,
   every scored row written to the payload log (``kfpkit serve --payload-log``);
5. **monitor** that window against the serving version's monitoring baseline: ``drift.json``, ``summary.json``
   and ``report.html`` (histograms per feature);
6. **retrain**: the monitoring pipeline under kfp.local; on drift its nested training pipeline retrains on
   the drifted data and pushes the next version.

Everything goes under ``--work-dir``: ``registry/``, ``outputs/`` (kfp.local), ``serving/`` (predictor, nginx
and Prometheus folders and logs), ``payload_log/``, ``rollout/``, ``monitor/``, ``demo.log`` (the full
progress of each pipeline run) and ``demo_summary.json`` (README "Demo summary JSON"). Every process the demo
starts is stopped when it ends, fails, or is interrupted (Ctrl-C, SIGTERM).

Exit status: 0 every stage ran (whatever the rollout decided and the monitor found), 1 a stage failed,
2 bad arguments or a missing system package (nginx, Prometheus).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from demo.summary import (
    CanaryStage,
    DemoDrift,
    DemoRollout,
    DemoSummary,
    DriftedTrafficStage,
    ModelVersionEntry,
    MonitorStage,
    RetrainStage,
    TrainingStage,
)

if TYPE_CHECKING:
    from kfpkit.core.run_summary import RunSummary

SUMMARY_FILE = "demo_summary.json"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# what the demo writes under its work dir (and removes there when it starts again)
OWNED = ("registry", "outputs", "serving", "payload_log", "rollout", "monitor", "traffic", "demo.log", SUMMARY_FILE)
STAGES = ("train_v1", "train_v2", "canary", "drifted_traffic", "monitor", "retrain")


class StageFailed(RuntimeError):
    """A stage could not produce what the next stages need; the message says why."""


class Demo:
    """Runs the stages in order; :meth:`close` stops every process it started (also after a failure)."""

    def __init__(self, args: argparse.Namespace, out: Any = None):
        self.args = args
        self.out = out or sys.stdout
        self.work = os.path.abspath(args.work_dir)
        self.registry = os.path.join(self.work, "registry")
        self.outputs = os.path.join(self.work, "outputs")
        self.serving = os.path.join(self.work, "serving")
        self.payload_log = os.path.join(self.work, "payload_log")
        self.log_path = os.path.join(self.work, "demo.log")
        self.summary_path = os.path.abspath(args.summary_json or os.path.join(self.work, SUMMARY_FILE))
        self.started_at = time.monotonic()
        self.stack = contextlib.ExitStack()
        self.summary = DemoSummary.started(self.work, self.registry, args.model_name, self.log_path)
        self.nginx: Any = None
        self.predictors: Dict[str, Any] = {}
        self.prometheus: Any = None
        self.log_file: Any = None
        self.canary_port = 0
        self.since = ""  # start of the drifted window in the payload log (ISO-8601)

    # --------------------------------------------------------------------------------------- helpers
    def source(self, seed_offset: int, drift: float, rows: Optional[int] = None) -> str:
        """The ``synthetic://fraud`` URI of ``rows`` rows (default ``--rows``), seed ``--seed + seed_offset``."""
        return f"synthetic://fraud?rows={rows or self.args.rows}&seed={self.args.seed + seed_offset}&drift={drift:g}"

    def elapsed(self) -> float:
        """Seconds since the demo started."""
        return time.monotonic() - self.started_at

    def say(self, line: str) -> None:
        """Prints ``line`` on the demo's output and copies it into ``demo.log`` (once it is open)."""
        self.out.write(line + "\n")
        self.out.flush()
        if self.log_file:
            self.log_file.write(f"== {line}\n")
            self.log_file.flush()

    def stage_line(self, number: int, name: str, text: str, report: str = "") -> None:
        """Prints a stage's timeline line: elapsed time, number, name, key figure and its report's path."""
        tail = f"  [{self._short(report)}]" if report else ""
        self.say(f"[{self.elapsed():5.0f}s] {number} {name:<16} {text}{tail}")

    def _short(self, path: str) -> str:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("..") else path

    @staticmethod
    def seconds_since(started: float) -> float:
        """A stage's ``duration_s``: seconds since ``started`` (``time.monotonic``), to 0.1 s."""
        return round(time.monotonic() - started, 1)

    def record(self, stage: str, entry: Any) -> None:
        """Sets the entry of ``stage`` (one of :data:`STAGES`) in the summary and rewrites the file."""
        setattr(self.summary.stages, stage, entry)
        self.write_summary()

    def write_summary(self) -> None:
        """Writes the demo summary record (``--summary-json``, default ``<work-dir>/demo_summary.json``)."""
        from kfpkit.core.records import write_record

        write_record(self.summary_path, self.summary)

    def train(self, pipeline: str, arguments: Dict[str, Any]) -> RunSummary:
        """Runs a pipeline under kfp.local; its run summary is also written as ``<run_dir>/summary.json``."""
        from kfpkit.core.records import write_record
        from kfpkit.pipelines.local import run_pipeline_locally

        self.log_file.write(f"\n== kfpkit run {pipeline} {arguments}\n")
        self.log_file.flush()
        summary = run_pipeline_locally(
            pipeline,
            arguments,
            pipeline_root=self.outputs,
            tfdv_python=self.args.tfdv_python,
            progress=self.log_file,
        )
        self.log_file.flush()
        if summary.run_dir:
            write_record(os.path.join(summary.run_dir, "summary.json"), summary)
        return summary

    def training_arguments(self, source: str, **extra: Any) -> Dict[str, Any]:
        """The training pipeline's arguments for ``source``: the demo's registry, model and options, plus ``extra``.

        Options left unset (``--epochs``, ``--batch-size``, ``--min-pr-auc``) keep the pipeline's defaults.
        """
        from kfpkit.components.ingest.synthetic import LABEL_COLUMN as SYNTHETIC_LABEL_COLUMN

        a = self.args
        arguments = dict(
            registry_root=self.registry,
            source=source,
            label_column=SYNTHETIC_LABEL_COLUMN,
            model_name=a.model_name,
            framework=a.framework,
        )
        optional = dict(epochs=a.epochs, batch_size=a.batch_size, min_pr_auc=a.min_pr_auc)
        return dict(arguments, **{k: v for k, v in optional.items() if v is not None}, **extra)

    @staticmethod
    def pushed(summary: RunSummary, what: str) -> RunSummary:
        """Returns ``summary`` of a run that pushed a version.

        Raises:
            StageFailed: the run failed, the data did not pass validation, or the model was not blessed
                (the message names ``what`` and the run log).
        """
        if not summary.succeeded:
            raise StageFailed(f"{what}: task {summary.failed_task} failed (run log {summary.run_log})")
        validation = summary.validation
        if validation is not None and not validation.passed:
            found = "; ".join(f"{k}: {v}" for k, v in sorted(validation.anomalies.items()))
            raise StageFailed(f"{what}: the data did not pass validation ({found}); run log {summary.run_log}")
        if not summary.pushed:
            reasons = "; ".join(summary.blessing_reasons) or "not pushed"
            raise StageFailed(f"{what}: not blessed ({reasons}); run log {summary.run_log}")
        return summary

    @staticmethod
    def pr_auc(summary: RunSummary) -> str:
        """The run's test PR-AUC to three decimals, or ``n/a``."""
        value = summary.pr_auc
        return "n/a" if value is None else f"{value:.3f}"

    @staticmethod
    def version_entry(summary: RunSummary, source: str) -> ModelVersionEntry:
        """The trained version a run pushed, for ``model_versions``."""
        assert summary.model_uri is not None and summary.model_version is not None  # pushed() checked it
        return ModelVersionEntry(summary.model_version, summary.model_uri, source, summary.pr_auc)

    def trained(self, name: str) -> ModelVersionEntry:
        """The version ``name`` (``v1``, ``v2``) as the summary's ``model_versions`` holds it; its stage ran."""
        return self.summary.model_versions[name]

    @property
    def serving_version(self) -> ModelVersionEntry:
        """The version serving after the canary stage: v2 when the rollout promoted it, else v1."""
        rollout = self.summary.rollout
        assert rollout is not None  # the canary stage ran
        return self.trained("v2" if rollout.serving_version == self.trained("v2").version else "v1")

    def record_training(
        self,
        stage: str,
        started: float,
        summary: RunSummary,
        serving_url: Optional[str] = None,
        prometheus_url: Optional[str] = None,
        baseline_pr_auc: Optional[float] = None,
    ) -> None:
        """:meth:`record` of a training run that pushed a version."""
        assert summary.model_uri is not None and summary.model_version is not None  # pushed() checked it
        entry = TrainingStage(
            status="succeeded",
            duration_s=self.seconds_since(started),
            run_dir=summary.run_dir,
            model_uri=summary.model_uri,
            model_version=summary.model_version,
            model_created=bool(summary.model_created),
            pr_auc=summary.pr_auc,
            serving_url=serving_url,
            prometheus_url=prometheus_url,
            baseline_pr_auc=baseline_pr_auc,
        )
        self.record(stage, entry)

    def traffic_rows(self, seed_offset: int, drift: float, rows: int, name: str) -> List[Dict[str, Any]]:
        """Feature rows of the synthetic source (label dropped), kept as ``<work-dir>/traffic/<name>.parquet``."""
        from kfpkit.components.ingest.synthetic import generate_fraud
        from kfpkit.onebox import replay

        path = os.path.join(self.work, "traffic", f"{name}.parquet")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        generate_fraud(rows, seed=self.args.seed + seed_offset, drift=drift).to_parquet(path, index=False)
        return replay.read_rows(path, "is_fraud")

    # ---------------------------------------------------------------------------------------- stages
    def stage_train_v1(self) -> None:
        """Stage 1: trains v1 and serves it as the stable version behind nginx (0 % canary), with Prometheus.

        Prometheus scrapes the stable predictor and the canary's port, which stays free until stage 3.
        """
        from kfpkit.onebox import stack as local

        started = time.monotonic()
        source = self.source(0, 0.0)
        summary = self.pushed(self.train("training", self.training_arguments(source)), "train v1")
        v1 = self.summary.model_versions["v1"] = self.version_entry(summary, source)
        # serve v1 as stable: its predictor, nginx (0 % canary) and Prometheus scraping both predictor ports
        os.makedirs(self.serving, exist_ok=True)
        canary_port = local.free_port()
        stable = self.predictor("stable", v1.uri)
        self.predictors["stable"].wait_ready()
        labels = {"namespace": local.LOCAL_NAMESPACE, "isvc": self.args.model_name}
        targets = [
            {"address": stable.address, "labels": dict(labels, model_version=str(v1.version))},
            {"address": f"127.0.0.1:{canary_port}", "labels": dict(labels, model_version="canary")},
        ]
        self.canary_port = canary_port
        self.prometheus = local.PrometheusServer(
            os.path.join(self.serving, "prometheus"), targets, self.args.scrape_interval
        ).start()
        self.stack.callback(self.prometheus.stop)
        self.nginx = local.Nginx(os.path.join(self.serving, "nginx"), stable.address, f"127.0.0.1:{canary_port}")
        self.stack.callback(self.nginx.stop)
        self.nginx.apply(0)
        self.warm_up(self.nginx.url)
        self.record_training(
            "train_v1", started, summary, serving_url=self.nginx.url, prometheus_url=self.prometheus.url
        )
        self.stage_line(
            1,
            "train v1",
            f"PR-AUC {self.pr_auc(summary)} (test) -> v{v1.version}; stable at {self.nginx.url}, "
            f"Prometheus {self.prometheus.url}",
            os.path.join(summary.run_dir or self.outputs, "summary.json"),
        )

    def predictor(self, role: str, uri: str, port: int = 0) -> Any:
        """Starts a ``kfpkit serve`` of ``uri`` with the payload log on, stopped when the demo closes."""
        from kfpkit.onebox import stack as local

        extra = ["--payload-log", self.payload_log, "--payload-log-flush-seconds", "1"]
        predictor = local.Predictor(
            uri, self.args.model_name, port=port, log_path=os.path.join(self.serving, f"{role}.log"), extra_args=extra
        ).start()
        self.predictors[role] = predictor
        self.stack.callback(predictor.stop)
        return predictor

    def warm_up(self, url: str, requests: int = 20) -> None:
        """A few scored rows first: a fresh TorchScript process answers its first calls slowly."""
        from kfpkit.onebox import replay

        rows = self.traffic_rows(9, 0.0, requests, "warm-up")
        replay.Replay(url, self.args.model_name, [[r] for r in rows], 200, 30, requests, threads=1).start().join()

    def stage_train_v2(self) -> None:
        """Stage 2: trains v2 on newer data (``--v2-drift``); evaluate scores v1 on the same test split."""
        started = time.monotonic()
        source = self.source(1, self.args.v2_drift)
        arguments = self.training_arguments(source, max_regression=self.args.max_regression)
        summary = self.pushed(self.train("training", arguments), "train v2")
        v2 = self.summary.model_versions["v2"] = self.version_entry(summary, source)
        base = (summary.baseline_metrics or {}).get("pr_auc")
        self.record_training("train_v2", started, summary, baseline_pr_auc=base)
        vs = f" (v1 on the same split: {base:.3f})" if base is not None else ""
        self.stage_line(
            2,
            "train v2",
            f"drift={self.args.v2_drift:g} data, PR-AUC {self.pr_auc(summary)}{vs} -> v{v2.version}",
            os.path.join(summary.run_dir or self.outputs, "summary.json"),
        )

    def stage_canary(self) -> None:
        """Stage 3: serves v2 as the canary and runs the canary analysis under replayed traffic.

        The rollout record is written after every step; the analysis promotes v2 or rolls back to v1.
        """
        from kfpkit.components.rollout.analysis import PrometheusSource, RolloutConfig, Thresholds, run_rollout
        from kfpkit.components.rollout.prometheus import PrometheusClient
        from kfpkit.core.rollout_record import PASS, PROMOTE, write_rollout_record
        from kfpkit.onebox import replay
        from kfpkit.onebox import stack as local

        a = self.args
        started = time.monotonic()
        v1, v2 = self.trained("v1"), self.trained("v2")
        config = RolloutConfig(
            steps=tuple(a.steps),
            interval_s=a.interval,
            min_requests=a.min_requests,
            max_inconclusive=2,
            thresholds=Thresholds(min_latency_increase_seconds=a.min_latency_increase),
        )
        canary = self.predictor("canary", v2.uri, port=self.canary_port)
        canary.wait_ready()
        self.warm_up(f"http://{canary.address}")
        # Prometheus labelled the canary port "canary" until now; restart it with the version label
        self.prometheus.stop()
        self.prometheus.targets[1]["labels"]["model_version"] = str(v2.version)
        self.prometheus.start()
        self.prometheus.wait_scraped(2)
        backend = local.LocalBackend(self.nginx, a.model_name, str(v1.version), str(v2.version))
        source = PrometheusSource(PrometheusClient(self.prometheus.url), config.templates())
        rows = self.traffic_rows(2, a.v2_drift, 2000, "canary")
        budget = config.interval_s * (len(config.steps) + config.max_inconclusive + 1) + 60
        load = replay.Replay(self.nginx.url, a.model_name, [[r] for r in rows], a.rps, budget).start()
        folder = os.path.join(self.work, "rollout")
        record_json, record_md = os.path.join(folder, "rollout.json"), os.path.join(folder, "rollout.md")

        def on_step(record: Any) -> None:
            write_rollout_record(record, record_json, record_md)

        try:
            record = run_rollout(backend, source, config, on_step=on_step, log=self._log_line)
        finally:
            answered = load.stop()
        serving = v2 if record.decision == PROMOTE else v1
        self.summary.rollout = DemoRollout(
            decision=record.decision,
            reason=record.reason,
            stable_version=v1.version,
            canary_version=v2.version,
            intervals=record.intervals_to_decision,
            weights=[s.weight for s in record.steps],
            verdicts=[s.verdict for s in record.steps],
            final_traffic=dict(record.final_traffic),
            serving_version=serving.version,
            record_json=record_json,
            record_md=record_md,
        )
        requests = sum(answered.values())
        errors = sum(n for code, n in answered.items() if code != 200)
        self.record("canary", CanaryStage("succeeded", self.seconds_since(started), requests, errors))
        path = " -> ".join(f"{s.weight}%" + ("" if s.verdict == PASS else f" ({s.verdict})") for s in record.steps)
        if record.decision == PROMOTE:
            text = f"PROMOTED v{v2.version} after {path} ({record.reason}); {requests} requests"
        else:
            text = f"ROLLED BACK to v{v1.version} after {path}: {record.reason}; {requests} requests"
        self.stage_line(3, "canary v2", text, record_md)

    def _log_line(self, message: str) -> None:
        self.log_file.write(f"rollout: {message}\n")
        self.log_file.flush()

    def stage_drifted_traffic(self) -> None:
        """Stage 4: replays drifted rows to the serving version, then stops every serving process.

        Stopping the predictors flushes their payload logs.

        Raises:
            StageFailed: no request was answered.
        """
        from kfpkit.onebox import replay

        a = self.args
        started = time.monotonic()
        # the window of this stage in the payload log: the canary stage's records are all older
        self.since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        rows = self.traffic_rows(3, a.live_drift, a.drifted_rows, "drifted")
        batches = replay.batches_of(rows, a.drifted_batch)
        rps = max(5.0, a.rps / 2)
        load = replay.Replay(self.nginx.url, a.model_name, batches, rps, len(batches) / rps + 60, len(batches))
        answered = load.start().join()
        # stopping the predictors flushes their payload logs (SIGTERM), and frees the CPU for what follows
        for predictor in self.predictors.values():
            predictor.stop()
        self.nginx.stop()
        self.prometheus.stop()
        ok = answered.get(200, 0)
        if ok == 0:
            raise StageFailed(f"drifted traffic: no request answered ({answered}); logs under {self.serving}")
        self.record(
            "drifted_traffic",
            DriftedTrafficStage(
                status="succeeded",
                duration_s=self.seconds_since(started),
                requests=sum(answered.values()),
                answered=ok,
                rows=ok * a.drifted_batch,
                drift=a.live_drift,
                since=self.since,
                payload_log=self.payload_log,
            ),
        )
        self.stage_line(
            4,
            "drifted traffic",
            f"{len(rows)} rows (drift={a.live_drift:g}) in {sum(answered.values())} requests to "
            f"v{self.serving_version.version}, {ok} answered; payload log on",
            self.payload_log,
        )

    def stage_monitor(self) -> None:
        """Stage 5: monitors stage 4's window of the payload log against the serving version's baseline."""
        from kfpkit.components.monitor.logic import OutputPaths, run_monitor

        started = time.monotonic()
        folder = os.path.join(self.work, "monitor")
        outputs = OutputPaths.in_folder(folder)
        result = run_monitor(
            model_uri=self.serving_version.uri, live=self.payload_log, outputs=outputs, since=self.since
        )
        drift = result.summary()  # the drift summary record, as summary.json holds it
        self.summary.drift = DemoDrift(
            drift_detected=drift.drift_detected,
            drifted_features=list(drift.drifted_features),
            score_drifted=bool(drift.score_drift and drift.score_drift.drifted),
            rows=drift.rows,
            model_uri=drift.model_uri,
            since=self.since,
            report_html=outputs.report_html,
            summary_json=outputs.summary_json,
            drift_json=outputs.drift_json,
        )
        self.record("monitor", MonitorStage("succeeded", self.seconds_since(started)))
        if result.drift_detected:
            names = result.drifted_features
            shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
            text = f"DRIFT in {len(names)} features ({shown or 'the score'}) over {result.rows} logged rows"
        else:
            text = f"no drift over {result.rows} logged rows"
        self.stage_line(5, "monitor", text, outputs.report_html or "")

    def stage_retrain(self) -> None:
        """Stage 6: runs the monitoring pipeline on the same window; on drift it retrains and may push v3.

        Raises:
            StageFailed: the monitoring pipeline run failed.
        """
        from kfpkit.components.ingest.synthetic import LABEL_COLUMN as SYNTHETIC_LABEL_COLUMN
        from kfpkit.core import registry

        a = self.args
        started = time.monotonic()
        before = {e.version for e in registry.list_versions(self.registry, a.model_name)}
        retrain_source = self.source(4, a.live_drift)
        arguments = dict(
            model_uri=self.serving_version.uri,
            live_source=self.payload_log,
            since=self.since,
            registry_root=self.registry,
            retrain_source=retrain_source,
            label_column=SYNTHETIC_LABEL_COLUMN,
            model_name=a.model_name,
            framework=a.framework,
            # the monitoring pipeline deploys a retrained version to KServe; the demo has no cluster, so it
            # stops after push (its canary stage is the local one above)
            prometheus_url=self.prometheus.url,
            deploy_new_version=False,
            **{k: v for k, v in dict(epochs=a.epochs, min_pr_auc=a.min_pr_auc).items() if v is not None},
        )
        summary = self.train("monitoring", arguments)
        if not summary.succeeded:
            raise StageFailed(f"retrain: task {summary.failed_task} failed (run log {summary.run_log})")
        new = [e for e in registry.list_versions(self.registry, a.model_name) if e.version not in before]
        retrained = "train" in summary.tasks
        entry = RetrainStage(
            status="succeeded",
            duration_s=self.seconds_since(started),
            run_dir=summary.run_dir,
            retrained=retrained,
            tasks=list(summary.tasks),
            source=retrain_source,
            pr_auc=summary.pr_auc,
            model_uri=None,
            model_version=None,
        )
        if new:
            v3 = ModelVersionEntry(new[-1].version, new[-1].uri, retrain_source, summary.pr_auc)
            self.summary.model_versions["v3"] = v3
            entry.model_uri, entry.model_version = v3.uri, v3.version
            text = f"monitoring pipeline: drift -> retrained, PR-AUC {self.pr_auc(summary)} -> v{v3.version}"
        elif retrained:
            text = "monitoring pipeline: drift -> retrained, NOT blessed (nothing pushed)"
        else:
            text = "monitoring pipeline: no drift, no retraining"
        self.record("retrain", entry)
        self.stage_line(6, "retrain", text, os.path.join(summary.run_dir or self.outputs, "summary.json"))

    # --------------------------------------------------------------------------------------------- run
    def clear_previous_run(self) -> None:
        """Removes what an earlier demo wrote in the work dir: every run starts from an empty registry."""
        import shutil

        for name in OWNED:
            path = os.path.join(self.work, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)

    def run(self) -> int:
        """Runs the six stages in order, then stops every process and writes the summary.

        Returns:
            ``EXIT_OK`` when every stage ran, ``EXIT_FAILED`` when one failed (the summary names it). An
            interruption is recorded and re-raised.
        """
        self.clear_previous_run()
        os.makedirs(self.work, exist_ok=True)
        self.log_file = open(self.log_path, "a", encoding="utf-8")  # closed last, in finally
        self.say(f"demo: the whole loop on this machine, everything under {self._short(self.work)}")
        stages: List[Callable[[], None]] = [
            self.stage_train_v1,
            self.stage_train_v2,
            self.stage_canary,
            self.stage_drifted_traffic,
            self.stage_monitor,
            self.stage_retrain,
        ]
        current = STAGES[0]
        try:
            for name, stage in zip(STAGES, stages, strict=True):
                current = name
                stage()
            self.summary.status = "succeeded"
            return EXIT_OK
        except Exception as exc:  # any failure ends the demo, its stage named
            self.summary.status, self.summary.failed_stage = "failed", current
            self.summary.error = f"{type(exc).__name__}: {exc}"
            self.say(f"demo: stage {current} failed: {exc} (details: {self._short(self.log_path)})")
            return EXIT_FAILED
        except BaseException:  # Ctrl-C, SIGTERM: stop everything, record why, re-raise
            self.summary.status, self.summary.failed_stage, self.summary.error = "interrupted", current, "interrupted"
            raise
        finally:
            self.summary.duration_s = round(self.elapsed(), 1)
            self.close()
            self.write_summary()
            if self.summary.status == "succeeded":
                self.say(f"demo: done in {self.summary.duration_s:.0f} s; summary {self._short(self.summary_path)}")
            self.log_file.close()
            self.log_file = None

    def close(self) -> None:
        """Stops every process the demo started (predictors, nginx, Prometheus), newest first."""
        self.stack.close()
