"""The one comparator of a numeric feature between two samples: quantile bins, JS distance, two-sample noise floor.

The drift monitor (a live window against the training profile) and validate (the eval and test splits
against the train split) judge a numeric feature with this comparator:

1. **Bins**: quantile bins of the *reference* sample (the training values): :func:`quantile_edges` gives up
   to ``bins - 1`` distinct inner edges, so bins are ``(-inf, e0), [e0, e1), ..., [e_last, inf)`` and a value
   ``v`` falls into bin ``searchsorted(edges, v, side="right")`` (:func:`bin_counts`). Only finite values are
   binned; missing ones are another check's business (the monitor's missing rate, validate's schema).
2. **Distance**: the Jensen-Shannon *distance* (base 2, in [0, 1]) of the two count vectors on those bins,
   :func:`kfpkit.core.distances.js_distance` (not TFDV's approximate JS *divergence* of equal-width
   histograms: a distance of 0.1 is a divergence of 0.01).
3. **Verdict**: shifted when the distance exceeds ``max(threshold, noise_floor)``, where ``threshold`` is the
   feature's fixed threshold and the noise floor (:func:`kfpkit.core.distances.js_floor`) is the distance
   that sampling noise alone exceeds with probability ``alpha`` for samples of ``n_ref`` and ``n_other``
   values on ``B`` non-empty bins::

       floor = sqrt(chi2_{B-1}(1 - alpha) * (1/n_ref + 1/n_other) / (8 ln 2))

**Why the floor counts both sizes.** The reference's own quantiles define the bins, so its counts are
fixed (about ``n_ref / B`` each), but the bins' true probabilities are then random: the spacings of
``n_ref`` order statistics, Dirichlet with variance ``p (1 - p) / n_ref``. The other sample's share of a bin
therefore differs from the reference's by the noise of both samples, variance ``p (1 - p) (1/n_ref +
1/n_other)``, and ``8 ln2 * JS^2`` (the JS divergence in nats, times 8) tends to ``chi2_{B-1}`` times that
scale, exactly as for two multinomial samples on fixed bins. The statistic depends on ranks only, so for
continuous features the null distribution is the same for every distribution of the data.

**Where the approximation holds (measured).** A simulation of that null (``benchmarks/validate/skew_sweep.py
--noise-floor``; 2 million draws per setting) compares the tail with the formula. With about 8 rows of the
smaller sample per bin (150 rows on 20 bins) the formula is optimistic: the simulated 1e-4 quantile is 5 %
above it and the false-alarm rate 5 times ``alpha`` (2 times at 1e-2, 8 times at 1e-5: the higher-order
terms of JS, ``x^4/12`` and beyond, and the skew of small counts). With 50 rows per bin and more the
simulated quantiles are within 1 % of the formula down to ``alpha = 1e-5`` and the false-alarm rate within
1.5 ``alpha`` (the simulation's own error at 1e-5 is about 0.2 ``alpha``). So
:func:`bins_for` gives two samples at most ``max_bins`` bins and at least :data:`MIN_ROWS_PER_BIN` rows of the
smaller sample per bin (validate); the monitor's baseline has its bins fixed at training time, and its noise
floor holds for windows of about ``50 * bins`` rows and more (below that the floor is a few per cent low).

Only numpy and the standard library are imported: this module runs in the main environment (numpy 2) and
in the TFDV environment (numpy 1.26), where validate's TFDV work calls it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from kfpkit.core import distances

DEFAULT_BINS = 20
MIN_ROWS_PER_BIN = 50
METRIC = "js"  # the metric's key in kfpkit.core.distances (METRIC_NAMES spells it out)
METRIC_NAME = distances.METRIC_NAMES[METRIC]


@dataclass(frozen=True)
class NumericShift:
    """The comparison of one numeric feature between a reference sample and another one.

    Attributes:
        distance: Jensen-Shannon distance (base 2) of the two samples on the reference's quantile bins.
        threshold: The feature's fixed threshold.
        noise_floor: The distance sampling noise alone exceeds with probability ``alpha``.
        alpha: The false-alarm probability of the noise floor.
        bins: Non-empty bins of the reference (the floor's degrees of freedom plus one).
        rows: ``(reference values, other values)`` compared (finite ones).
    """

    distance: float
    threshold: float
    noise_floor: float
    alpha: float
    bins: int
    rows: Tuple[int, int]

    @property
    def limit(self) -> float:
        """``max(threshold, noise_floor)``: the distance above which the feature has shifted."""
        return max(self.threshold, self.noise_floor)

    @property
    def shifted(self) -> bool:
        """Whether the distance is above :attr:`limit`."""
        return bool(self.distance > self.limit)

    def verdict(self) -> distances.MetricVerdict:
        """The comparison as the monitor's ``js`` :class:`~kfpkit.core.distances.MetricVerdict`."""
        return distances.verdict(METRIC, self.distance, self.threshold, self.noise_floor)


def finite(values: np.ndarray) -> np.ndarray:
    """The finite values of ``values`` as float64 (NaN and infinities dropped)."""
    values = np.asarray(values, dtype=np.float64)
    mask = np.isfinite(values)
    return values if mask.all() else values[mask]


def quantile_edges(values: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Distinct inner quantile edges of finite ``values`` (fewer than ``bins - 1`` for discrete data)."""
    if values.size == 0:
        return np.empty(0, dtype=np.float64)
    qs = np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    edges = np.unique(qs)
    # an edge at the minimum would leave the first bin empty: the bins are [-inf, e0), so drop it
    return edges[edges > values.min()] if edges.size > 1 else edges


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of finite ``values`` per bin of ``edges`` (``len(edges) + 1`` bins)."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def bins_for(n_ref: int, n_other: int, max_bins: int = DEFAULT_BINS, min_rows: int = MIN_ROWS_PER_BIN) -> int:
    """Quantile bins for two samples: at most ``max_bins``, at least ``min_rows`` of the smaller one per bin.

    Never fewer than 2. See the module docstring for why the noise floor needs the rows per bin.
    """
    return int(min(max_bins, max(2, min(n_ref, n_other) // max(min_rows, 1))))


def compare_counts(
    reference: np.ndarray, other: np.ndarray, threshold: float, alpha: float = distances.DEFAULT_ALPHA
) -> NumericShift:
    """The comparator on counts: ``other``'s counts against ``reference``'s on the reference's bins.

    Args:
        reference: Counts of the reference sample per bin (its quantile bins).
        other: Counts of the other sample on the same bins.
        threshold: The feature's fixed JS-distance threshold.
        alpha: False-alarm probability of the noise floor.
    """
    reference = np.asarray(reference, dtype=np.int64)
    other = np.asarray(other, dtype=np.int64)
    n_ref, n_other = int(reference.sum()), int(other.sum())
    bins = int(np.count_nonzero(reference)) or 1
    return NumericShift(
        distance=distances.js_distance(other, reference),
        threshold=float(threshold),
        noise_floor=distances.js_floor(bins, n_other, n_ref, alpha),
        alpha=float(alpha),
        bins=bins,
        rows=(n_ref, n_other),
    )


def compare_values(
    reference: np.ndarray,
    other: np.ndarray,
    threshold: float,
    alpha: float = distances.DEFAULT_ALPHA,
    bins: int = 0,
) -> NumericShift:
    """The comparator on raw values: quantile bins of ``reference``, both samples counted on them.

    Non-finite values are dropped first.

    Args:
        reference: Values of the reference sample (e.g. the train split's column).
        other: Values of the other sample (e.g. the eval split's column).
        threshold: The feature's fixed JS-distance threshold.
        alpha: False-alarm probability of the noise floor.
        bins: Quantile bins requested; 0 chooses them with :func:`bins_for` from both sizes.
    """
    reference, other = finite(reference), finite(other)
    edges = quantile_edges(reference, bins or bins_for(reference.size, other.size))
    return compare_counts(bin_counts(reference, edges), bin_counts(other, edges), threshold, alpha)
