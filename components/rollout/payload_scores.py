"""The score distribution of one served version over a window, from its payload log (kfp-free).

Where the traffic backend has no Prometheus (Vertex AI Endpoints), the rollout compares the scores that
each side's ``kfpkit serve --payload-log URI`` wrote: the payload record (:mod:`kfpkit.core.payload_record`)
of every scored instance, under ``<URI>/<model_name>/<model_version>/<YYYY-MM-DD>/<HH>/``. The counts use
the buckets of the predictor's ``kfpkit_prediction_score`` histogram (:data:`SCORE_BUCKET_BOUNDS`, a value
``v`` in the first bucket whose bound ``le`` has ``v <= le``), so that the score checks judge the same
histograms whichever way they were counted.

A record reaches the log up to the server's ``--payload-log-flush-seconds`` after its request: a window
that ends now misses about that much of its end, the same share on both sides.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Iterator, List, Tuple

from kfpkit.core import payload_record

# = kfpkit.serving.metrics.SCORE_BUCKETS (+Inf), kept here so that the rollout never imports the server's metrics
SCORE_BUCKET_BOUNDS: Tuple[float, ...] = (*(round(0.05 * i, 2) for i in range(1, 21)), math.inf)


class PayloadLogUnavailable(RuntimeError):
    """The payload log could not be listed or read."""


def score_histogram(
    root: str, model_name: str, model_version: str, since: float, until: float
) -> Tuple[List[float], List[float]]:
    """``(counts, upper bounds)`` of the scores logged for one version with timestamps in ``[since, until)``.

    Args:
        root: The payload-log root (local folder, ``gs://``, any fsspec URL).
        model_name: The served model name (first partition level).
        model_version: The served version (second level).
        since: Window start, Unix time.
        until: Window end, Unix time.

    Raises:
        PayloadLogUnavailable: the log cannot be listed or a file cannot be read.
    """
    import numpy as np

    counts = np.zeros(len(SCORE_BUCKET_BOUNDS), dtype=np.int64)
    for scores in _window_scores(root, model_name, model_version, since, until):
        finite = scores[np.isfinite(scores)]
        positions = np.searchsorted(np.asarray(SCORE_BUCKET_BOUNDS[:-1]), finite, side="left")
        counts += np.bincount(positions, minlength=len(SCORE_BUCKET_BOUNDS))
    return [float(c) for c in counts], list(SCORE_BUCKET_BOUNDS)


def _window_scores(root: str, model_name: str, model_version: str, since: float, until: float) -> Iterator[Any]:
    """Yields the ``score`` arrays of the rows of the window, file by file."""
    import fsspec.core
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        fs, path = fsspec.core.url_to_fs(root)
        folder = f"{path.rstrip('/')}/{payload_record.model_prefix(model_name, model_version)}"
        files = sorted(f for f in fs.find(folder) if f.endswith(payload_record.PARQUET_SUFFIX) and "/." not in f)
    except (OSError, ValueError, ImportError) as exc:
        raise PayloadLogUnavailable(f"{root}: {type(exc).__name__}: {exc}") from exc
    start = datetime.fromtimestamp(since, tz=timezone.utc)
    end = datetime.fromtimestamp(until, tz=timezone.utc)
    for file in files:
        hour = payload_record.partition_hour(file)
        if hour is not None and (hour.timestamp() + 3600 <= since or hour.timestamp() >= until):
            continue
        try:
            with fs.open(file, "rb") as handle:
                table = pq.read_table(handle, columns=[payload_record.TIMESTAMP, payload_record.SCORE])
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise PayloadLogUnavailable(f"{file}: {type(exc).__name__}: {exc}") from exc
        stamps = table.column(payload_record.TIMESTAMP)
        low, high = pa.scalar(start, stamps.type), pa.scalar(end, stamps.type)
        mask = pc.and_(pc.greater_equal(stamps, low), pc.less(stamps, high))
        yield table.filter(mask).column(payload_record.SCORE).to_numpy(zero_copy_only=False)
