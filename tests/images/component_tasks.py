"""Runs components' ``python_func`` on tiny data, inside an image (or any environment with kfpkit).

    python component_tasks.py WORKDIR TASK [TASK ...] [--webhook-url URL] [--prometheus-url URL]
    (KUBECONFIG: the Kubernetes API that deploy and rollout talk to)

tests/images/test_containers.py mounts this folder read-only into each image and runs the components of
that image's group, in the order a pipeline does, on one shared WORKDIR (a bind mount writable by uid
1000): ingest writes the splits, train the model, push a registry version, the later components read
them. Each component appends ``{"component": ..., ...}`` to ``WORKDIR/results.jsonl`` with a few facts
about what it returned or wrote, which the test checks. Only kfpkit, kfp and what the image has are
imported: no test helpers, no pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Dict, List

LABEL = "is_fraud"
SOURCE = "synthetic://fraud?rows=3000&seed=0"
ISVC = "fraud"
NAMESPACE = "models"


def _artifact(cls: Any, path: str, metadata: Any = None) -> Any:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    artifact = cls(uri=path, metadata=dict(metadata or {}))
    artifact.path = path
    return artifact


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class Tasks:
    """One method per component: run its python_func on the shared work folder, return facts to check."""

    def __init__(self, work: str, webhook_url: str, prometheus_url: str) -> None:
        self.work = work
        self.webhook_url = webhook_url
        self.prometheus_url = prometheus_url

    def path(self, *parts: str) -> str:
        return os.path.join(self.work, *parts)

    def dataset(self, split: str) -> Any:
        from kfp.dsl import Dataset

        return _artifact(Dataset, self.path("splits", split), {"split": split, "source_uri": SOURCE})

    def ingest(self) -> Dict[str, Any]:
        from kfp.dsl import Dataset

        from kfpkit.components.ingest.component import ingest

        outputs = {s: _artifact(Dataset, self.path("splits", s)) for s in ("train", "eval", "test")}
        ingest.python_func(
            source=SOURCE,
            label_column=LABEL,
            train_data=outputs["train"],
            eval_data=outputs["eval"],
            test_data=outputs["test"],
        )
        return {"rows": {s: a.metadata.get("rows") for s, a in outputs.items()}}

    def train(self) -> Dict[str, Any]:
        from kfp.dsl import Metrics, Model

        from kfpkit.components.train.component import train

        model = _artifact(Model, self.path("model", "model"))
        metrics = _artifact(Metrics, self.path("model", "metrics"))
        train.python_func(
            train_data=self.dataset("train"),
            eval_data=self.dataset("eval"),
            label_column=LABEL,
            model=model,
            metrics=metrics,
            epochs=2,
            batch_size=256,
            hidden_units=16,
            exclude_columns=["transaction_id"],
        )
        return {"framework": model.metadata["framework"], "pr_auc": metrics.metadata["pr_auc"]}

    def model(self) -> Any:
        from kfp.dsl import Model

        card = _read_json(self.path("model", "model", "model_card.json"))
        return _artifact(Model, self.path("model", "model"), {"framework": card["framework"]})

    def evaluate(self) -> Dict[str, Any]:
        from kfp.dsl import ClassificationMetrics, Markdown, Metrics, Model

        from kfpkit.components.evaluate.component import evaluate

        out = evaluate.python_func(
            model=self.model(),
            test_data=self.dataset("test"),
            label_column=LABEL,
            metrics=_artifact(Metrics, self.path("evaluate", "metrics")),
            classification_metrics=_artifact(ClassificationMetrics, self.path("evaluate", "cm")),
            report=_artifact(Markdown, self.path("evaluate", "report.md")),
            evaluated_model=_artifact(Model, self.path("evaluate", "model")),
            min_pr_auc_lift=1.0,
        )
        return {"blessed": bool(out), "report": os.path.getsize(self.path("evaluate", "report.md"))}

    def push(self) -> Dict[str, Any]:
        from kfp.dsl import Model

        from kfpkit.components.push.component import push

        pushed = _artifact(Model, self.path("push", "pushed_model.json"))
        out = push.python_func(
            model=self.model(), registry_root=self.path("registry"), model_name=ISVC, pushed_model=pushed
        )
        return {"model_uri": out.model_uri, "version": out.version}

    def pushed_uri(self) -> str:
        return _read_json(self.path("push", "pushed_model.json"))["model_uri"]

    def monitor(self) -> Dict[str, Any]:
        from kfp.dsl import HTML, Artifact, Metrics

        from kfpkit.components.monitor.component import monitor

        drift = _artifact(Artifact, self.path("monitor", "drift.json"))
        out = monitor.python_func(
            model_uri=self.pushed_uri(),
            live_source=self._payload_log_and_labels()[0],
            metrics=_artifact(Metrics, self.path("monitor", "metrics")),
            report=_artifact(HTML, self.path("monitor", "report.html")),
            drift=drift,
            since="",
            until="",
        )
        return {"drift_detected": bool(out), "drift_json": os.path.isfile(drift.path)}

    def drift_alert(self) -> Dict[str, Any]:
        from kfp.dsl import Artifact

        from kfpkit.components.drift_alert.component import drift_alert

        status = drift_alert.python_func(
            webhook_url=self.webhook_url,
            model_uri=self.pushed_uri(),
            drift=_artifact(Artifact, self.path("monitor", "drift.json")),
            pipeline_run="container-test",
        )
        return {"status": status}

    def performance(self) -> Dict[str, Any]:
        from kfp.dsl import HTML, Artifact, Metrics

        from kfpkit.components.performance.component import performance

        live, labels = self._payload_log_and_labels()
        out = performance.python_func(
            model_uri=self.pushed_uri(),
            live_source=live,
            labels=[labels],
            label_column=LABEL,
            metrics=_artifact(Metrics, self.path("performance", "metrics")),
            report=_artifact(HTML, self.path("performance", "report.html")),
            summary=_artifact(Artifact, self.path("performance", "summary.json")),
            maturity="1d",
            as_of="2026-01-10T00:00:00Z",
            resamples=50,
        )
        return {"degraded": bool(out), "summary": os.path.isfile(self.path("performance", "summary.json"))}

    def performance_skipped(self) -> Dict[str, Any]:
        from kfpkit.components.performance_skipped.component import performance_skipped

        return {"degraded": performance_skipped.python_func(retrain_on="drift")}

    def retrain_decision(self) -> Dict[str, Any]:
        from kfpkit.components.retrain_decision.component import retrain_decision

        decision = retrain_decision.python_func(drift_detected=False, degraded=True, retrain_on="either")
        return {"decision": decision}

    def _payload_log_and_labels(self) -> tuple[str, str]:
        """The test split scored by the pushed model as a payload log over three days, and its labels as CSV."""
        import pandas as pd

        live, labels_path = self.path("live", "payload-log"), self.path("live", "labels.csv")
        if os.path.exists(labels_path):
            return live, labels_path

        from kfpkit.core import model_dir, payload_record

        loaded = model_dir.load_model(self.pushed_uri())
        frame = pd.read_parquet(self.path("splits", "test"))
        scores = loaded.predict_proba(frame)
        features = [f for f in loaded.spec.feature_order]
        records = []
        for i, (row, score) in enumerate(zip(frame[features].to_dict("records"), scores, strict=True)):
            day = 1 + i % 3
            records.append(
                payload_record.PayloadRecord(
                    request_id=f"r{i}",
                    instance=0,
                    timestamp=f"2026-01-0{day}T12:00:00+00:00",
                    model_name=ISVC,
                    model_version="1",
                    features=row,
                    score=float(score),
                    label=int(score >= loaded.decision_threshold),
                )
            )
        schema = payload_record.PayloadSchema(loaded.spec)
        payload_record.write_partitioned(live, schema.records_table(records), "part-0.parquet")
        labels = pd.DataFrame(
            {
                "request_id": [f"r{i}" for i in range(len(frame))],
                "instance": 0,
                LABEL: frame[LABEL].to_numpy(),
                "labelled_at": [f"2026-01-0{1 + i % 3}T18:00:00Z" for i in range(len(frame))],
            }
        )
        labels.to_csv(labels_path, index=False)
        return live, labels_path

    def deploy(self) -> Dict[str, Any]:
        from kfp.dsl import Markdown, Model

        from kfpkit.components.deploy.component import deploy

        pushed = _artifact(Model, self.path("push", "pushed_model.json"))
        out = deploy.python_func(
            isvc_name=ISVC,
            namespace=NAMESPACE,
            status=_artifact(Markdown, self.path("deploy", "status.md")),
            pushed_model=pushed,
            timeout_seconds=20.0,
        )
        return {"stable_version": out.stable_version, "canary_version": out.canary_version}

    def canary(self) -> Dict[str, Any]:
        """deploy again with a second registry version: the canary the rollout analyses."""
        # the same network with another decision threshold: other content, so push claims version 2
        import shutil

        from kfp.dsl import Markdown, Model

        from kfpkit.components.deploy.component import deploy
        from kfpkit.components.push.component import push
        from kfpkit.core import model_dir

        second = self.path("model2", "model")
        shutil.copytree(self.path("model", "model"), second)
        card = _read_json(os.path.join(second, "model_card.json"))
        with open(os.path.join(second, "model_card.json"), "w", encoding="utf-8") as handle:
            json.dump({**card, "decision_threshold": card["decision_threshold"] * 1.01}, handle)
        model_dir.write_manifest(second)
        pushed = _artifact(Model, self.path("push2", "pushed_model.json"))
        model = _artifact(Model, second, {"framework": card["framework"]})
        push.python_func(model=model, registry_root=self.path("registry"), model_name=ISVC, pushed_model=pushed)
        out = deploy.python_func(
            isvc_name=ISVC,
            namespace=NAMESPACE,
            status=_artifact(Markdown, self.path("canary", "status.md")),
            pushed_model=pushed,
            canary_percent=10,
            timeout_seconds=20.0,
        )
        return {"stable_version": out.stable_version, "canary_version": out.canary_version}

    def rollout(self) -> Dict[str, Any]:
        from kfp.dsl import Artifact, Markdown, Metrics

        from kfpkit.components.rollout.component import rollout

        out = rollout.python_func(
            isvc_name=ISVC,
            namespace=NAMESPACE,
            prometheus_url=self.prometheus_url,
            steps=[50, 100],
            interval_seconds=0.2,
            max_inconclusive=1,
            record=_artifact(Markdown, self.path("rollout", "record.md")),
            record_json=_artifact(Artifact, self.path("rollout", "record.json")),
            metrics=_artifact(Metrics, self.path("rollout", "metrics")),
            timeout_seconds=20.0,
        )
        return {"decision": out.decision}

    def infra_validate(self) -> Dict[str, Any]:
        from kfp.dsl import Markdown, Model

        from kfpkit.components.infra_validate.component import infra_validate

        pushed = _artifact(Model, self.pushed_uri())
        out = infra_validate.python_func(
            model=pushed,
            eval_data=self.dataset("eval"),
            report=_artifact(Markdown, self.path("infra_validate", "report.md")),
            num_requests=20,
            latency_budget_ms=10_000.0,
        )
        return {"infra_blessed": bool(out)}

    def validate(self) -> Dict[str, Any]:
        from kfp.dsl import Artifact, Markdown

        from kfpkit.components.validate.component import validate

        outputs = {
            name: _artifact(Artifact, self.path("validate", name))
            for name in (
                "train_statistics",
                "eval_statistics",
                "test_statistics",
                "schema",
                "anomalies",
                "baseline",
            )
        }
        out = validate.python_func(
            train_data=self.dataset("train"),
            eval_data=self.dataset("eval"),
            test_data=self.dataset("test"),
            label_column=LABEL,
            report=_artifact(Markdown, self.path("validate", "report.md")),
            **outputs,
        )
        return {"passed": bool(out), "schema": os.path.exists(outputs["schema"].path)}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("work")
    parser.add_argument("components", nargs="+")
    parser.add_argument("--webhook-url", default="")
    parser.add_argument("--prometheus-url", default="")
    args = parser.parse_args(argv)
    tasks = Tasks(args.work, args.webhook_url, args.prometheus_url)
    for component in args.components:
        run: Callable[[], Dict[str, Any]] = getattr(tasks, component)
        facts = {"component": component, **run()}
        with open(tasks.path("results.jsonl"), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(facts, default=str) + "\n")
        print(json.dumps(facts, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
