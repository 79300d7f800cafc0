"""Request bodies for the kfpkit predictor built from a pandas DataFrame (infra_validate, load tests, docs).

The bodies follow :mod:`kfpkit.serving.protocol`: missing numeric values become ``null`` (the server fills
the training median, as offline preprocessing does), missing categorical values become ``""`` (the unknown
bucket, as offline). Numbers keep full float64 precision in the JSON whatever the declared datatype, so
the server scores exactly what ``LoadedModel.predict_proba`` scores offline.

Serialize with :func:`dumps` (orjson) or any JSON encoder.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from kfpkit.serving.protocol import TENSOR_INPUT_NAME


def _numeric_values(series: Any) -> List[Optional[float]]:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    return [None if math.isnan(v) else v for v in values.tolist()]


def _integer_values(series: Any) -> List[int]:
    return [int(v) for v in series.to_numpy().tolist()]


def _categorical_values(series: Any) -> List[str]:
    from kfpkit.core.preprocessing import _category_key

    return [_category_key(v) for v in series.tolist()]


def _is_integer_column(series: Any) -> bool:
    return series.dtype.kind in "iu" and not bool(series.isna().any())


def _column_values(series: Any, categorical: bool) -> List[Any]:
    return _categorical_values(series) if categorical else _numeric_values(series)


def v1_body(
    frame: Any, feature_order: Sequence[str], categorical: Sequence[str] = (), as_rows: bool = False
) -> Dict[str, Any]:
    """``{"instances": [...]}``: objects keyed by feature, or rows in ``feature_order`` with ``as_rows``.

    Args:
        frame: Rows to send; columns besides the features (e.g. the label) are left out.
        feature_order: The model's features (``PreprocessingSpec.feature_order``).
        categorical: The categorical features (their values are sent as canonical strings).
        as_rows: Send lists in ``feature_order`` instead of objects.

    Raises:
        KeyError: a feature is not a column of ``frame``.
    """
    cats = set(categorical)
    missing = [f for f in feature_order if f not in frame.columns]
    if missing:
        raise KeyError(f"feature column(s) not in the frame: {missing}")
    columns = {f: _column_values(frame[f], f in cats) for f in feature_order}
    n = len(frame)
    if as_rows:
        instances: List[Any] = [[columns[f][i] for f in feature_order] for i in range(n)]
    else:
        instances = [{f: columns[f][i] for f in feature_order} for i in range(n)]
    return {"instances": instances}


def v2_body(
    frame: Any,
    feature_order: Sequence[str],
    categorical: Sequence[str] = (),
    request_id: Optional[str] = None,
    as_tensor: bool = False,
) -> Dict[str, Any]:
    """An Open Inference Protocol request: one input per feature (FP32/INT64/BYTES), or one tensor.

    Args:
        frame: Rows to send; columns besides the features are left out.
        feature_order: The model's features (``PreprocessingSpec.feature_order``).
        categorical: The categorical features (sent as BYTES strings).
        request_id: Optional ``id`` (echoed by the server).
        as_tensor: Send one FP32 ``[n, k]`` tensor named ``features`` (all features must be numeric).

    Raises:
        KeyError: a feature is not a column of ``frame``.
        ValueError: ``as_tensor`` with categorical features.
    """
    missing = [f for f in feature_order if f not in frame.columns]
    if missing:
        raise KeyError(f"feature column(s) not in the frame: {missing}")
    n = len(frame)
    cats = set(categorical)
    body: Dict[str, Any] = {}
    if request_id is not None:
        body["id"] = request_id
    if as_tensor:
        if cats:
            raise ValueError(
                f"a single '{TENSOR_INPUT_NAME}' tensor needs all-numeric features; {sorted(cats)} are categorical"
            )
        columns = [_numeric_values(frame[f]) for f in feature_order]
        data = [columns[j][i] for i in range(n) for j in range(len(feature_order))]
        body["inputs"] = [
            {"name": TENSOR_INPUT_NAME, "datatype": "FP32", "shape": [n, len(feature_order)], "data": data}
        ]
        return body
    inputs = []
    for f in feature_order:
        series = frame[f]
        if f in cats:
            inputs.append({"name": f, "datatype": "BYTES", "shape": [n], "data": _categorical_values(series)})
        elif _is_integer_column(series):
            inputs.append({"name": f, "datatype": "INT64", "shape": [n], "data": _integer_values(series)})
        else:
            inputs.append({"name": f, "datatype": "FP32", "shape": [n], "data": _numeric_values(series)})
    body["inputs"] = inputs
    return body


def bodies_for_spec(frame: Any, spec: Any, batch_size: int, protocol: str = "v2") -> List[Dict[str, Any]]:
    """Splits ``frame`` into batches of ``batch_size`` rows and builds one body per batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    build = v2_body if protocol == "v2" else v1_body
    return [
        build(frame.iloc[i : i + batch_size], spec.feature_order, spec.categorical_names)
        for i in range(0, len(frame), batch_size)
    ]


def dumps(body: Dict[str, Any]) -> bytes:
    """JSON bytes of a body (orjson)."""
    import orjson

    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
