"""Distances between histograms, and the window-size-dependent rule that turns them into drift verdicts.

The one implementation of every distance in kfpkit: the monitor scores features with them, the rollout
analysis compares the canary's score histogram with the stable version's (:func:`js_distance`, :func:`psi`).
Every metric compares two count vectors on the same bins (for the monitor: the live window's counts on the
*baseline's* bins -- quantile bins for numeric features and the score, top-K values plus "other" for
categorical ones). Each key below is the metric's name in every report; :data:`METRIC_NAMES` spells it out:

* ``js`` -- Jensen-Shannon *distance*, base 2, in [0, 1]: the square root of the Jensen-Shannon
  *divergence*, as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``, of the present values. (TFDV's
  skew and drift comparator is an approximate JS *divergence*; a distance of 0.1 is a divergence of 0.01.
  Validate's numeric skew check uses this distance, through :mod:`kfpkit.core.numeric_shift`);
* ``psi`` -- population stability index ``sum((p - q) * ln(p / q))``, every count smoothed by 0.5 first
  (:data:`PSI_SMOOTHING`: an empty bin on one side gives a large but finite index);
* ``linf`` -- L-infinity distance of the categorical value frequencies (TFDV's and Vertex's drift measure
  for categorical features: missing values are left out, every distinct value counts, unseen ones too);
* ``missing_rate`` -- absolute change of the missing rate;
* ``unseen_rate`` -- live share of present values outside the baseline's values, minus the baseline's "other"
  share.

**The rule.** A metric flags drift when it exceeds ``max(threshold, noise_floor(n))``. The noise floor is what
the metric reaches from sampling noise alone with probability ``alpha``, for ``n`` live rows against ``N``
baseline rows of the same distribution: under no drift, ``8 ln2 * JS^2``, ``PSI`` and ``chi^2 / n`` all tend to
``chi^2_{k-1} * (1/n + 1/N)`` for ``k`` bins, and a frequency's error is about ``sqrt(q (1 - q) (1/n + 1/N))``.
Small windows therefore need larger distances to raise an alarm (a 200-row window has a JS-distance floor
near 0.2 with 20 bins), large ones fall back to the fixed thresholds (0.1 for the JS distance and for
L-infinity). This is the role statistical tests play below 1,000 rows in Evidently, with one rule for every
window size.

Only numpy and the standard library are imported (no scipy: it would cost the monitor's start-up time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np

# a count vector: a numpy array or a sequence of numbers (the rollout's Prometheus bucket counts)
Counts = Union[np.ndarray, Sequence[float]]

# fixed thresholds of every metric (the floor of the rule); per-feature overrides replace them
DEFAULT_THRESHOLDS: Dict[str, float] = {
    "js": 0.1,
    "psi": 0.25,
    "linf": 0.1,
    "missing_rate": 0.05,
    "unseen_rate": 0.01,
}
# probability that one metric of one feature crosses its noise floor on an undrifted window
DEFAULT_ALPHA = 1e-6
NUMERIC_METRICS = ("js", "psi", "missing_rate")
CATEGORICAL_METRICS = ("js", "psi", "linf", "missing_rate", "unseen_rate")
SCORE_METRICS = ("js", "psi")
PSI_SMOOTHING = 0.5
# the exact name of every metric key, for reports and READMEs
METRIC_NAMES: Dict[str, str] = {
    "js": "Jensen-Shannon distance, base 2",
    "psi": f"PSI, counts smoothed by {PSI_SMOOTHING:g}",
    "linf": "L-infinity distance",
    "missing_rate": "missing-rate change",
    "unseen_rate": "unseen-value rate",
}


@dataclass
class MetricVerdict:
    """One drift metric of one feature: its value, the threshold in force for this window size, the verdict.

    Attributes:
        metric: The metric's key (see :data:`METRIC_NAMES`).
        score: Its value on this window.
        threshold: ``max(fixed threshold, noise floor of the window size)``.
        drifted: ``score > threshold``.
    """

    metric: str
    score: float
    threshold: float
    drifted: bool

    @property
    def ratio(self) -> float:
        """``score / threshold`` (infinite for a zero threshold): how far past its limit the metric is."""
        return self.score / self.threshold if self.threshold > 0 else math.inf


# --------------------------------------------------------------------------- distances
def _normalize(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=np.float64)


def js_distance(live: Counts, base: Counts) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two count vectors on the same bins.

    The square root of the Jensen-Shannon divergence of the two normalized vectors; 0.0 when either
    vector has no counts. Symmetric in its arguments.
    """
    p = _normalize(np.asarray(live, dtype=np.float64))
    q = _normalize(np.asarray(base, dtype=np.float64))
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(math.sqrt(max(0.0, 0.5 * (kl_p + kl_q))))


def psi(live: Counts, base: Counts, smoothing: float = PSI_SMOOTHING) -> float:
    """Population stability index of two count vectors on the same bins, each count smoothed by ``smoothing``.

    ``sum((p - q) * ln(p / q))`` over the smoothed, normalized vectors: symmetric in its arguments, and
    finite where one side has an empty bin.
    """
    live = np.asarray(live, dtype=np.float64) + smoothing
    base = np.asarray(base, dtype=np.float64) + smoothing
    p, q = live / live.sum(), base / base.sum()
    return float(np.sum((p - q) * np.log(p / q)))


def linf_distance(live: Mapping[str, float], base: Mapping[str, float]) -> float:
    """L-infinity distance of two ``{value: count}`` maps, each normalized to frequencies (as TFDV does)."""
    live_total = float(sum(live.values()))
    base_total = float(sum(base.values()))
    if live_total == 0 or base_total == 0:
        return 0.0
    keys = set(live) | set(base)
    return float(max(abs(live.get(k, 0.0) / live_total - base.get(k, 0.0) / base_total) for k in keys))


# --------------------------------------------------------------------------- noise floors
def _z(tail: float) -> float:
    """The standard normal quantile with ``tail`` probability above it."""
    return NormalDist().inv_cdf(1.0 - tail)


def chi2_quantile(df: int, tail: float) -> float:
    """Upper ``tail`` quantile of chi-square with ``df`` degrees of freedom (Wilson-Hilferty; slightly high at df 1)."""
    if df <= 0:
        return 0.0
    h = 2.0 / (9.0 * df)
    return df * max(0.0, 1.0 - h + _z(tail) * math.sqrt(h)) ** 3


def _scale(n_live: int, n_base: int) -> float:
    return 1.0 / max(n_live, 1) + (1.0 / n_base if n_base > 0 else 0.0)


def js_floor(bins: int, n_live: int, n_base: int, alpha: float = DEFAULT_ALPHA) -> float:
    """JS distance that sampling noise alone exceeds with probability ``alpha`` (``bins`` non-empty bins)."""
    return math.sqrt(chi2_quantile(bins - 1, alpha) * _scale(n_live, n_base) / (8.0 * math.log(2.0)))


def psi_floor(bins: int, n_live: int, n_base: int, alpha: float = DEFAULT_ALPHA) -> float:
    """PSI that sampling noise alone exceeds with probability ``alpha`` (``bins`` non-empty bins)."""
    return chi2_quantile(bins - 1, alpha) * _scale(n_live, n_base)


def frequency_floor(q: np.ndarray, n_live: int, n_base: int, alpha: float = DEFAULT_ALPHA) -> float:
    """Largest noise of any one of ``len(q)`` frequencies (two-sided, Bonferroni over the values)."""
    q = np.asarray(q, dtype=np.float64)
    if q.size == 0:
        return 0.0
    spread = float(np.sqrt(np.max(q * (1.0 - q)) * _scale(n_live, n_base)))
    return _z(alpha / (2.0 * q.size)) * spread


def rate_floor(rate_live: float, n_live: int, rate_base: float, n_base: int, alpha: float = DEFAULT_ALPHA) -> float:
    """Noise of the difference of two rates (pooled two-proportion spread, two-sided)."""
    total = n_live + n_base
    pooled = (rate_live * n_live + rate_base * n_base) / total if total else 0.0
    return _z(alpha / 2.0) * math.sqrt(pooled * (1.0 - pooled) * _scale(n_live, n_base))


def verdict(metric: str, score: float, threshold: float, floor: float) -> MetricVerdict:
    """The verdict of ``score`` against ``max(threshold, floor)``: drift when it is above."""
    effective = max(threshold, floor)
    return MetricVerdict(metric=metric, score=float(score), threshold=float(effective), drifted=bool(score > effective))


def threshold_for(metric: str, feature: str, overrides: Optional[Mapping[str, Mapping[str, float]]] = None) -> float:
    """The fixed threshold of ``metric`` for ``feature``: a per-feature override, else the default."""
    if overrides and feature in overrides and metric in overrides[feature]:
        return float(overrides[feature][metric])
    if overrides and "*" in overrides and metric in overrides["*"]:
        return float(overrides["*"][metric])
    return DEFAULT_THRESHOLDS[metric]
