"""Seeded synthetic card traffic with delayed labels: the data of the performance accuracy suite and benchmark.

A transaction has a merchant ``segment`` (six, from everyday ones the model trusts to gift cards), an
``amount`` (lognormal) and a ``velocity`` (transactions in the last 24 h, Poisson). The fraud probability is
``sigmoid(segment logit + 0.5 (log amount - 3.5) + 0.35 (velocity - 2))``, about 8% overall, and the
"model" serves exactly that probability as its score: it is calibrated on the reference traffic.

Scenarios (from ``change_day`` on; :data:`SCENARIOS`):

* ``none`` -- the reference traffic throughout;
* ``covariate`` -- more traffic from the riskier segments (P(x) moves), P(y | x) unchanged: the scores stay
  calibrated;
* ``concept`` -- fraud moves into ``grocery``, the segment the model trusts most (its fraud logit + 2.5),
  while P(x) stays the same: the scores, and every input, look as before.

Labels arrive late, as chargebacks do: a fraud label after a lognormal delay of median 8 days, a
legitimate one after a median of 2 days (sigma 0.5 each; 0.4% of fraud labels take over 30 days). Each row
has the payload record's key ``(request_id, instance)`` (two instances per request) and a business key
``transaction_id``. :func:`messy_labels` adds what real feeds carry: repeated deliveries, a wrong label
corrected later, labels of transactions that were never scored here, and a shuffled order.

:func:`make_model_dir` writes a model version folder for the traffic: a model card whose test metrics (and
decision threshold, F1-maximizing) come from reference rows, a preprocessing spec, a stand-in model file and
the monitoring baseline profile, so that both ``kfpkit performance`` and ``kfpkit monitor`` run on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

SEGMENTS = ("grocery", "fuel", "retail", "electronics", "travel", "gift_cards")
BASE_SHARE = np.array([0.30, 0.20, 0.22, 0.12, 0.10, 0.06])
RISKY_SHARE = np.array([0.14, 0.12, 0.20, 0.20, 0.19, 0.15])
SEGMENT_LOGIT = np.array([-4.2, -3.6, -3.0, -1.8, -1.4, -0.4])
CONCEPT_SEGMENT = 0  # grocery
CONCEPT_LIFT = 2.5
SCENARIOS = ("none", "covariate", "concept")
START = np.datetime64("2026-01-01T00:00:00", "ns")
DAY_NS = 86_400 * 10**9
FEATURES = ("segment", "amount", "velocity")


@dataclass
class Traffic:
    """Scored rows and their true labels.

    Attributes:
        frame: ``request_id``, ``instance``, ``transaction_id``, ``timestamp`` (UTC), the features and
            ``score``, sorted by time.
        truth: The true label per row.
        labelled_at: When each row's label becomes known (numpy datetime64[ns], UTC).
    """

    frame: Any
    truth: np.ndarray
    labelled_at: np.ndarray


def _logit(segment: np.ndarray, amount: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    return SEGMENT_LOGIT[segment] + 0.5 * (np.log(amount) - 3.5) + 0.35 * (velocity - 2.0)


def _features(rng: np.random.Generator, rows: int, shares: np.ndarray) -> Dict[str, np.ndarray]:
    return {
        "segment": rng.choice(len(SEGMENTS), size=rows, p=shares),
        "amount": np.round(rng.lognormal(3.5, 1.0, rows), 2) + 0.01,
        "velocity": rng.poisson(2.0, rows).astype(np.float64),
    }


def generate(
    rows: int,
    seed: int,
    scenario: str = "none",
    days: int = 30,
    change_day: Optional[int] = None,
    key_prefix: str = "",
) -> Traffic:
    """``rows`` scored transactions spread evenly over ``days`` days from 2026-01-01 (UTC).

    Args:
        rows: Scored rows.
        seed: Seed of everything drawn.
        scenario: One of :data:`SCENARIOS`.
        days: Days of traffic.
        change_day: The day the scenario's change starts (default: half-way).
        key_prefix: Prefix of the keys (distinct traffic gets distinct keys).
    """
    import pandas as pd

    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.integers(0, days * DAY_NS, size=rows))
    changed = offsets >= (days // 2 if change_day is None else change_day) * DAY_NS
    if scenario == "none":
        changed[:] = False
    shares = RISKY_SHARE if scenario == "covariate" else BASE_SHARE
    before, after = _features(rng, rows, BASE_SHARE), _features(rng, rows, shares)
    features = {name: np.where(changed, after[name], before[name]) for name in FEATURES}
    logit = _logit(features["segment"], features["amount"], features["velocity"])
    score = 1.0 / (1.0 + np.exp(-logit))
    true_logit = logit + (CONCEPT_LIFT * (features["segment"] == CONCEPT_SEGMENT) if scenario == "concept" else 0.0)
    truth = (rng.random(rows) < np.where(changed, 1.0 / (1.0 + np.exp(-true_logit)), score)).astype(np.int64)
    median_days = np.where(truth == 1, 8.0, 2.0)
    delay = (median_days * np.exp(rng.normal(0.0, 0.5, rows)) * DAY_NS).astype(np.int64)
    index = np.arange(rows)
    frame = pd.DataFrame(
        {
            "request_id": np.char.add(f"{key_prefix}req-{seed}-", (index // 2).astype(str)),
            "instance": (index % 2).astype(np.int32),
            "transaction_id": np.char.add(f"{key_prefix}tx-{seed}-", index.astype(str)),
            "timestamp": pd.to_datetime(START + offsets.astype("timedelta64[ns]")).tz_localize("UTC"),
            "segment": np.asarray(SEGMENTS, dtype=object)[features["segment"]],
            "amount": features["amount"],
            "velocity": features["velocity"],
            "score": score,
        }
    )
    return Traffic(frame=frame, truth=truth, labelled_at=START + (offsets + delay).astype("timedelta64[ns]"))


def labels_frame(traffic: Traffic, key: str = "payload") -> Any:
    """One label row per scored row: the key (``payload``: request_id, instance; ``business``: transaction_id),
    ``is_fraud`` and ``labelled_at`` (ISO-8601 text, UTC), in the order the labels became known."""
    import pandas as pd

    columns = ["request_id", "instance"] if key == "payload" else ["transaction_id"]
    frame = traffic.frame[columns].copy()
    frame["is_fraud"] = traffic.truth
    frame["labelled_at"] = pd.to_datetime(traffic.labelled_at).tz_localize("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    order = np.argsort(traffic.labelled_at, kind="stable")
    return frame.iloc[order].reset_index(drop=True)


@dataclass
class Mess:
    """What :func:`messy_labels` added, to check the join's counts against."""

    duplicates: int
    corrected: int
    unknown: int


def messy_labels(labels: Any, seed: int, duplicates: int = 50, corrected: int = 20, unknown: int = 30) -> tuple:
    """The label rows with repeated deliveries, wrong labels corrected later, unknown keys, shuffled.

    Returns:
        ``(frame, Mess)``: the messy rows (shuffled) and how many of each kind were added.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    picks = rng.choice(len(labels), size=duplicates + corrected, replace=False)
    repeated = labels.iloc[picks[:duplicates]].copy()
    wrong = labels.iloc[picks[duplicates:]].copy()
    right = wrong.copy()
    wrong["is_fraud"] = 1 - wrong["is_fraud"]
    # the wrong label came first; the correction a day after the true label (so it wins)
    stamps = pd.to_datetime(right["labelled_at"], format="ISO8601") + pd.Timedelta(days=1)
    right["labelled_at"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    labels = labels.drop(index=labels.index[picks[duplicates:]])
    strangers = labels.iloc[:unknown].copy()
    for column in ("request_id", "transaction_id"):
        if column in strangers:
            strangers[column] = [f"never-scored-{i}" for i in range(unknown)]
    frame = pd.concat([labels, repeated, wrong, right, strangers], ignore_index=True)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    return frame, Mess(duplicates=duplicates, corrected=corrected, unknown=unknown)


def _threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    from kfpkit.core.classification_metrics import max_f1_threshold

    return float(max_f1_threshold(labels, scores))


def make_model_dir(path: str, seed: int = 1000, reference_rows: int = 15_000) -> str:
    """A model version folder for the traffic: card (test metrics of ``reference_rows`` rows), spec, baseline.

    Returns:
        The folder.
    """
    import pandas as pd

    from kfpkit.core import bootstrap
    from kfpkit.core import monitoring_baseline as mb
    from kfpkit.core.model_card import DataLineage, ModelCard, SplitLineage, write_model_card
    from kfpkit.core.preprocessing import PreprocessingSpec

    os.makedirs(path, exist_ok=True)
    reference = generate(reference_rows, seed, days=1)
    scores, labels = reference.frame["score"].to_numpy(), reference.truth
    threshold = _threshold(labels, scores)
    rows = bootstrap.WeightedRows(labels, scores, threshold)
    values = rows.metrics(np.ones((1, rows.rows)))
    metrics = {name: float(v[0]) for name, v in values.items()}
    train = generate(4 * reference_rows, seed + 1, days=1).frame
    frame = pd.DataFrame({name: train[name] for name in FEATURES}).assign(is_fraud=0)
    spec = PreprocessingSpec.fit(frame, "is_fraud")
    spec.save(os.path.join(path, "preprocessing.json"))
    with open(os.path.join(path, "model.skops"), "wb") as fh:
        fh.write(b"stand-in model: the traffic generator serves the calibrated probability itself")
    mb.write_baseline(path, mb.build_baseline(frame, spec, scores))
    card = ModelCard(
        framework="sklearn",
        model_file="model.skops",
        label_column="is_fraud",
        feature_order=list(FEATURES),
        decision_threshold=threshold,
        decision_rule="F1-maximizing threshold of the reference rows",
        calibration="platt",
        data=DataLineage("synthetic traffic", {"eval": SplitLineage("0" * 64, reference_rows, float(labels.mean()))}),
        metrics={"test": metrics},
    )
    write_model_card(path, card)
    return path
