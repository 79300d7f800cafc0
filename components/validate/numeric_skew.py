"""validate's numeric skew check: train↔eval and train↔test with the comparator the drift monitor uses.

TFDV's skew comparator for numeric features is the *approximate* Jensen-Shannon divergence of two
equal-width histograms, each on its own split's range; on heavy tails and a few thousand rows it reaches
0.3-0.5 between two random samples of one table (tensorflow/data-validation#216), so hash splits of one
table failed validation (7 of 23 seeds of the built-in sample at 100k rows). Numeric features are therefore
judged here, by :mod:`kfpkit.core.numeric_shift`:

* the bins are quantile bins of the **train** split's finite values, at most 20 and at least 50 values of
  the smaller split per bin (:func:`kfpkit.core.numeric_shift.bins_for`: below that the noise floor's
  chi-square approximation is optimistic);
* the metric is the Jensen-Shannon **distance** (base 2) of the two splits' counts on those bins;
* a feature is skewed when the distance exceeds ``max(threshold, noise floor)``: the threshold is the
  feature's (``skew_thresholds``, a curated schema's comparator, else ``default_numeric_js_threshold``), the
  noise floor what sampling noise alone exceeds with probability :data:`ALPHA` for the two split sizes.

Categorical features keep TFDV's L-infinity comparator. Missing values are left out of the distance (the
schema's presence check covers them); a split whose column is absent, not numeric or entirely missing is
not compared (its schema anomaly says why).

Each split's column is read from its Parquet file with pyarrow, one column at a time (memory: the train
column, 8 bytes a row). kfp-free and TensorFlow-free: ``tfdv_main`` calls it in the TFDV interpreter
(numpy 1.26), the tests in the main environment (numpy 2).
"""

from __future__ import annotations

from typing import List, Mapping, Optional

import numpy as np

from kfpkit.components.validate.exchange import AnomalyReason, SkewMeasurement
from kfpkit.core import distances, numeric_shift

JS_DISTANCE = "jensen_shannon_distance"  # the metric's key in the result (TFDV's was jensen_shannon_divergence)
ANOMALY_TYPE = "JS_DISTANCE_HIGH"  # kfpkit's anomaly type of a numeric skew (TFDV's types start COMPARATOR_)
ALPHA = distances.DEFAULT_ALPHA  # false-alarm probability of one feature and split pair
COMPARED = ("eval", "test")


def read_numeric(path: str, column: str) -> Optional[np.ndarray]:
    """The values of ``column`` in the Parquet file ``path`` as float64, nulls as NaN.

    Returns ``None`` when the file has no such column or its type is not a number or a bool.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if column not in pq.read_schema(path).names:
        return None
    values = pq.read_table(path, columns=[column]).column(column)
    kind = values.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
        return None
    values = pc.fill_null(pc.cast(values, pa.float64()), float("nan"))
    return np.asarray(values.to_numpy(), dtype=np.float64)


def measure(paths: Mapping[str, str], thresholds: Mapping[str, float], alpha: float = ALPHA) -> List[SkewMeasurement]:
    """The numeric skew of every feature of ``thresholds``, train against eval and train against test.

    Args:
        paths: ``{split: local Parquet path}`` of ``train``, ``eval`` and ``test``.
        thresholds: ``{numeric feature: its JS-distance threshold}``: the features to compare.
        alpha: False-alarm probability of the noise floor, per feature and split pair.

    Returns:
        One measurement per feature and split pair that could be compared, by feature then pair.
    """
    out: List[SkewMeasurement] = []
    for feature in sorted(thresholds):
        train = read_numeric(paths["train"], feature)
        train = None if train is None else numeric_shift.finite(train)
        if train is None or train.size == 0:
            continue
        for split in COMPARED:
            other = read_numeric(paths[split], feature)
            other = None if other is None else numeric_shift.finite(other)
            if other is None or other.size == 0:
                continue
            shift = numeric_shift.compare_values(train, other, thresholds[feature], alpha)
            out.append(
                SkewMeasurement(
                    feature=feature,
                    splits=f"train/{split}",
                    metric=JS_DISTANCE,
                    value=shift.distance,
                    threshold=shift.threshold,
                    exceeded=shift.shifted,
                    noise_floor=shift.noise_floor,
                    bins=shift.bins,
                    rows=list(shift.rows),
                )
            )
    return out


def anomaly_reasons(measurements: List[SkewMeasurement], alpha: float = ALPHA) -> List[AnomalyReason]:
    """One skew anomaly reason per exceeded JS-distance measurement, naming the metric, limit and floor."""
    reasons = []
    for item in measurements:
        if item.metric != JS_DISTANCE or not item.exceeded:
            continue
        compared = item.splits.split("/", 1)[1]
        floor = float(item.noise_floor or 0.0)
        train_rows, other_rows = item.rows or [0, 0]
        reasons.append(
            AnomalyReason(
                split=item.splits,
                check="skew",
                feature=item.feature,
                type=ANOMALY_TYPE,
                short_description=f"High Jensen-Shannon distance between train and {compared}",
                description=(
                    f"The Jensen-Shannon distance (base 2, on {item.bins} quantile bins of train) between train "
                    f"and {compared} is {item.value:.3f}, above the limit {max(item.threshold, floor):.3f} "
                    f"(threshold {item.threshold:g}; noise floor {floor:.3f} for {train_rows:,} and "
                    f"{other_rows:,} values at alpha {alpha:g})."
                ),
                severity="ERROR",
            )
        )
    return reasons
