"""Request decoding/validation and response encoding for kfpkit's v1 and v2 (Open Inference Protocol) APIs.

This module holds the wire contract of the predictor and nothing else: it imports only numpy (orjson is
used by the callers), so the serving hot path, the KServe ``Model.predict`` path and the tests share one
implementation.

**v1** (``POST /v1/models/{name}:predict``)::

    {"instances": [{"amount": 12.5, "channel": "web", ...}, ...]}      # objects keyed by feature
    {"instances": [[12.5, "web", ...], ...]}                           # rows in ``feature_order``
    -> {"predictions": [{"probability": 0.031, "label": 0}, ...]}

Every instance must name exactly the model's features (a missing or an unexpected key is a 400; drop
the label column before sending). ``null`` is a missing value: the training median for a numeric feature,
the unknown bucket for a categorical one.

**v2** (``POST /v2/models/{name}/infer``), either one input per feature::

    {"inputs": [{"name": "amount", "datatype": "FP32", "shape": [n], "data": [...]},
                {"name": "channel", "datatype": "BYTES", "shape": [n], "data": ["web", ...]}, ...]}

where numeric features take any numeric datatype (FP32, FP64, INT8..INT64, UINT8..UINT64; INT* data must
be integers) and categorical features take BYTES (strings), shape ``[n]`` or ``[n, 1]``; or, only when
**every** feature is numeric, one tensor named ``features`` of shape ``[n, k]`` with the columns in
``feature_order``. A model with categorical features refuses the single tensor (a 400 that names them):
a float tensor cannot carry category names. JSON numbers are read at full (float64) precision whatever
the declared width, so the model sees exactly the values offline evaluation sees. ``data`` may be flat
(row-major) or nested. The optional ``outputs`` list selects among ``probability`` (FP32 ``[n]``) and
``label`` (INT64 ``[n]``: ``probability >= decision_threshold`` of the model card); ``id`` is echoed.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

TENSOR_INPUT_NAME = "features"
PROBABILITY_OUTPUT = "probability"
LABEL_OUTPUT = "label"
OUTPUT_NAMES = (PROBABILITY_OUTPUT, LABEL_OUTPUT)

INT_DATATYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
FLOAT_DATATYPES = frozenset({"FP32", "FP64"})
NUMERIC_DATATYPES = INT_DATATYPES | FLOAT_DATATYPES
KNOWN_DATATYPES = NUMERIC_DATATYPES | {"BYTES", "BOOL", "FP16", "BF16"}
V2_REQUIRED_INPUT_FIELDS = ("name", "shape", "datatype", "data")
_SHOWN = 10  # names listed in an error message before "..."
_TENSOR_WHERE = f"input {TENSOR_INPUT_NAME!r}"


class BadRequest(ValueError):
    """A request the predictor refuses: answered with ``status`` (4xx) and ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class DecodedRequest:
    """Feature values of one request, ready for the preprocessing spec.

    Attributes:
        columns: Feature name -> the values as received (lists or numpy arrays).
        rows: Number of rows.
        request_id: The v2 ``id`` (the scorer generates one when the request has none).
        outputs: The outputs to return, in order.
        matrix: For the single ``features`` tensor: its float64 ``[rows, features]`` values in feature
            order, which ``PreprocessingSpec.transform_matrix`` takes whole; ``columns`` are then views of
            it, built when first read.
        feature_order: The features of ``matrix``'s columns, in order (empty without a matrix).
    """

    __slots__ = ("_columns", "feature_order", "matrix", "outputs", "request_id", "rows")

    def __init__(
        self,
        columns: Optional[Dict[str, Any]] = None,
        rows: int = 0,
        request_id: Optional[str] = None,
        outputs: Tuple[str, ...] = OUTPUT_NAMES,
        matrix: Optional[np.ndarray] = None,
        feature_order: Sequence[str] = (),
    ):
        if columns is None and matrix is None:
            raise ValueError("DecodedRequest needs columns or a matrix")
        self._columns = columns
        self.rows = rows
        self.request_id = request_id
        self.outputs = outputs
        self.matrix = matrix
        self.feature_order = feature_order

    @property
    def columns(self) -> Dict[str, Any]:
        """Feature name -> values; for a ``features`` tensor, column views of ``matrix`` built on first read."""
        if self._columns is None:
            matrix = self.matrix
            assert matrix is not None
            self._columns = {f: matrix[:, j] for j, f in enumerate(self.feature_order)}
        return self._columns

    def __repr__(self) -> str:
        return f"DecodedRequest(rows={self.rows}, features={list(self.columns)}, request_id={self.request_id!r})"


def _input_label(j: int, item: Mapping[str, Any]) -> str:
    """``inputs[j]``, with the input's name when it has one (for error messages)."""
    return f"inputs[{j}]" + (f" ({item['name']!r})" if isinstance(item.get("name"), str) else "")


def _names(names: Sequence[str]) -> str:
    shown = list(names)[:_SHOWN]
    more = f" ... ({len(names)} in all)" if len(names) > _SHOWN else ""
    return f"{shown}{more}"


def _is_number(value: Any) -> bool:
    return (type(value) is float or type(value) is int) or (
        isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    )


def _holds_bool(values: Sequence[Any], array: np.ndarray) -> bool:
    """Whether ``values``, which numpy read as the numbers ``array``, hold a JSON boolean.

    numpy reads ``[1, True]`` as ``[1, 1]``, so only values equal to 0 or 1 can be booleans: for long
    columns only those are looked at (checking every value's type was a third of a 1,000-row decode).
    """
    if len(values) > 64:
        candidates = np.flatnonzero((array == 0) | (array == 1))
        if candidates.size <= len(values) // 4:
            return any(type(values[i]) is bool for i in candidates.tolist())
    return bool in set(map(type, values))


def numeric_column(values: Sequence[Any], feature: str, integer_only: bool = False) -> np.ndarray:
    """A float64 column from JSON values: numbers, or ``null`` for a missing value.

    Raises:
        BadRequest: a value is a string, a boolean, a list or an object (or, with ``integer_only``, a
            non-integer number).
    """
    if isinstance(values, np.ndarray):  # binary tensors (REST extension, gRPC raw contents)
        if values.dtype.kind in "iuf":
            return values.astype(np.float64)
        raise BadRequest(f"feature {feature!r} is numeric but the tensor has dtype {values.dtype}")
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):
        array = None
    # numpy turns [1, True] into [1, 1]: a list holding a boolean takes the per-value path (and is refused)
    if array is not None and array.ndim == 1 and array.dtype.kind in "iuf" and not _holds_bool(values, array):
        if array.dtype.kind in "iu":
            return array.astype(np.float64)
        if not integer_only:
            return array.astype(np.float64, copy=False)
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        if value is None:
            out[i] = np.nan
        elif not _is_number(value):
            raise BadRequest(f"feature {feature!r} is numeric but value #{i} is {value!r}")
        elif integer_only and not float(value).is_integer():
            raise BadRequest(f"feature {feature!r} is declared as an integer datatype but value #{i} is {value!r}")
        else:
            out[i] = value
    return out


def categorical_column(values: Sequence[Any], feature: str, strings_only: bool = False) -> Sequence[Any]:
    """Validates a categorical column: scalars (v1) or strings (v2 BYTES); lists/objects are refused.

    ``null`` is accepted in both: the unknown bucket, as offline.
    """
    if strings_only:
        for i, value in enumerate(values):
            if type(value) is not str and value is not None:
                raise BadRequest(
                    f"feature {feature!r} is BYTES (categorical) but value #{i} is {value!r}, not a string"
                )
    else:
        for i, value in enumerate(values):
            if isinstance(value, (list, dict)):
                raise BadRequest(f"feature {feature!r} is categorical but value #{i} is {value!r}, not a scalar")
    return values


def _flatten(data: List[Any], where: str, depth: int = 0) -> List[Any]:
    """Row-major flattening of nested ``data`` (OIP allows both flat and nested)."""
    if isinstance(data, np.ndarray):
        return data.ravel()
    if not data or not isinstance(data[0], list):
        return data  # flat; a stray list further on fails the value checks with a 400
    if depth >= 4:
        raise BadRequest(f"{where}: 'data' is nested too deeply")
    out: List[Any] = []
    for value in data:
        if isinstance(value, list):
            out.extend(_flatten(value, where, depth + 1))
        else:
            out.append(value)
    return out


def _v1_instances(body: Any) -> List[Any]:
    """The non-empty ``instances`` list of a v1 request body.

    Raises:
        BadRequest: the body is not an object, has no ``instances`` (v2 ``inputs`` get a hint), or they are not
            a non-empty list.
    """
    if not isinstance(body, dict):
        raise BadRequest('the v1 request body must be a JSON object {"instances": [...]}')
    instances = body.get("instances")
    if instances is None:
        hint = " (the v2 'inputs' format goes to /v2/models/{name}/infer)" if "inputs" in body else ""
        raise BadRequest(f"the v1 request has no 'instances' list{hint}")
    if not isinstance(instances, list):
        raise BadRequest(f"'instances' must be a list, got {type(instances).__name__}")
    if not instances:
        raise BadRequest("'instances' is empty: send at least one instance")
    return instances


class RequestCodec:
    """Decodes v1/v2 request bodies into feature columns and encodes predictions, for one model.

    Args:
        feature_order: The model's features in their declared order (``PreprocessingSpec.feature_order``).
        categorical: Names of the categorical features (the rest are numeric).
        model_name: Name reported in v2 responses.
        model_version: Version reported in v2 responses, when known.
    """

    def __init__(
        self,
        feature_order: Sequence[str],
        categorical: Sequence[str],
        model_name: str,
        model_version: Optional[str] = None,
        ignored_columns: Sequence[str] = (),
    ):
        self.feature_order: List[str] = list(feature_order)
        self.feature_set = frozenset(self.feature_order)
        # identifier columns training left out (PreprocessingSpec.ignored_columns): accepted, not used
        self.ignored = frozenset(ignored_columns) - self.feature_set
        self.categorical = frozenset(categorical)
        self.numeric_names = [f for f in self.feature_order if f not in self.categorical]
        self.model_name = model_name
        self.model_version = model_version
        self.tensor_input_enabled = not self.categorical and TENSOR_INPUT_NAME not in self.feature_set

    @classmethod
    def from_spec(cls, spec: Any, model_name: str, model_version: Optional[str] = None) -> RequestCodec:
        """The codec of a ``PreprocessingSpec``: its features, categorical ones and ignored identifier columns."""
        return cls(
            spec.feature_order,
            spec.categorical_names,
            model_name,
            model_version,
            ignored_columns=getattr(spec, "ignored_columns", ()),
        )

    # ------------------------------------------------------------------ metadata
    def input_metadata(self) -> List[Dict[str, Any]]:
        """The v2 inputs: one per feature, FP32 (numeric) or BYTES (categorical), shape ``[-1]``."""
        return [
            {"name": f, "datatype": "BYTES" if f in self.categorical else "FP32", "shape": [-1]}
            for f in self.feature_order
        ]

    @staticmethod
    def output_metadata() -> List[Dict[str, Any]]:
        """The v2 outputs: ``probability`` (FP32) and ``label`` (INT64), shape ``[-1]``."""
        return [
            {"name": PROBABILITY_OUTPUT, "datatype": "FP32", "shape": [-1]},
            {"name": LABEL_OUTPUT, "datatype": "INT64", "shape": [-1]},
        ]

    # ------------------------------------------------------------------ v1
    def decode_v1(self, body: Any) -> DecodedRequest:
        """Decodes ``{"instances": [...]}`` (objects keyed by feature, or rows in ``feature_order``).

        Raises:
            BadRequest: anything else, naming what is wrong.
        """
        instances = _v1_instances(body)
        first = instances[0]
        if isinstance(first, dict):
            raw = self._v1_object_values(instances)
        elif isinstance(first, list):
            raw = self._v1_row_values(instances)
        else:
            raise BadRequest(
                f"instance #0 is {type(first).__name__}; each instance must be an object {{feature: value}} "
                f"or a list of values in order {_names(self.feature_order)}"
            )
        columns: Dict[str, Any] = {}
        for f in self.feature_order:
            if f in self.categorical:
                columns[f] = categorical_column(raw[f], f)
            else:
                columns[f] = numeric_column(raw[f], f)
        return DecodedRequest(columns=columns, rows=len(instances))

    def _v1_object_values(self, instances: List[Any]) -> Dict[str, List[Any]]:
        """Feature -> raw values of instances given as objects, each with exactly the features (ignored ones aside).

        Raises:
            BadRequest: an instance is not an object, or misses a feature or has an unexpected one.
        """
        order = self.feature_order
        expected = self.feature_set
        for i, row in enumerate(instances):
            if not isinstance(row, dict):
                raise BadRequest(f"instance #{i} is not an object like instance #0; use one form for all")
            if row.keys() != expected and (not self.ignored or row.keys() - self.ignored != expected):
                missing = [f for f in order if f not in row]
                extra = sorted(k for k in row if k not in expected and k not in self.ignored)
                parts = []
                if missing:
                    parts.append(f"missing feature(s) {_names(missing)}")
                if extra:
                    parts.append(f"unexpected feature(s) {_names(extra)}")
                raise BadRequest(f"instance #{i}: {'; '.join(parts)} (expected exactly {_names(order)})")
        return {f: [row[f] for row in instances] for f in order}

    def _v1_row_values(self, instances: List[Any]) -> Dict[str, List[Any]]:
        """Feature -> raw values of instances given as lists of values in :attr:`feature_order`.

        Raises:
            BadRequest: an instance is not a list of exactly one value per feature.
        """
        order = self.feature_order
        width = len(order)
        for i, row in enumerate(instances):
            if not isinstance(row, list) or len(row) != width:
                got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
                raise BadRequest(f"instance #{i} has {got}; expected a list of {width} values in order {_names(order)}")
        return {f: [row[j] for row in instances] for j, f in enumerate(order)}

    @staticmethod
    def encode_v1(probability: np.ndarray, labels: np.ndarray) -> Dict[str, Any]:
        """The v1 response: one ``{"probability": p, "label": l}`` prediction per instance."""
        return {
            "predictions": [
                {PROBABILITY_OUTPUT: p, LABEL_OUTPUT: lab}
                for p, lab in zip(probability.tolist(), labels.tolist(), strict=True)
            ]
        }

    # ------------------------------------------------------------------ v2
    def decode_v2(self, body: Any) -> DecodedRequest:
        """Decodes an Open Inference Protocol request (per-feature inputs or one ``features`` tensor).

        Raises:
            BadRequest: a malformed input, a missing/unexpected feature, a wrong shape or datatype, a
                non-numeric value, ..., naming what is wrong.
        """
        request_id, outputs, inputs = self._v2_request_fields(body)
        for j, item in enumerate(inputs):
            self._check_input_fields(j, item)
        if len(inputs) == 1 and inputs[0]["name"] == TENSOR_INPUT_NAME and self.tensor_input_enabled:
            return self._decode_tensor(inputs[0], request_id, outputs)
        self._check_input_names([item["name"] for item in inputs])
        columns: Dict[str, Any] = {}
        rows: Optional[int] = None
        for item in inputs:
            if item["name"] in self.ignored:
                continue
            rows, columns[item["name"]] = self._decode_feature_input(item, rows)
        assert rows is not None
        return DecodedRequest(columns=columns, rows=rows, request_id=request_id, outputs=outputs)

    def _v2_request_fields(self, body: Any) -> Tuple[Optional[str], Tuple[str, ...], List[Any]]:
        """The ``id``, the requested outputs and the non-empty ``inputs`` list of a v2 request body.

        Raises:
            BadRequest: the body is not an object, or one of these fields (or ``parameters``) has the wrong type.
        """
        if not isinstance(body, dict):
            raise BadRequest('the v2 request body must be a JSON object {"inputs": [...]}')
        request_id = body.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise BadRequest(f"'id' must be a string, got {type(request_id).__name__}")
        parameters = body.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise BadRequest("'parameters' must be an object")
        outputs = self._requested_outputs(body.get("outputs"))
        inputs = body.get("inputs")
        if inputs is None:
            hint = " (the v1 'instances' format goes to /v1/models/{name}:predict)" if "instances" in body else ""
            raise BadRequest(f"the v2 request has no 'inputs' list{hint}")
        if not isinstance(inputs, list):
            raise BadRequest(f"'inputs' must be a list, got {type(inputs).__name__}")
        if not inputs:
            raise BadRequest("'inputs' is empty: send one input per feature")
        return request_id, outputs, inputs

    def _check_input_names(self, names: List[str]) -> None:
        """Checks that the per-feature inputs name every feature once, and nothing else but ignored columns.

        Raises:
            BadRequest: a name is repeated, unexpected (a ``features`` tensor of a model with categorical
                features included) or a feature has no input.
        """
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise BadRequest(f"input(s) {_names(dup)} given more than once")
        unexpected = [n for n in names if n not in self.feature_set and n not in self.ignored]
        if unexpected:
            if TENSOR_INPUT_NAME in unexpected and not self.tensor_input_enabled:
                raise BadRequest(
                    f"a single '{TENSOR_INPUT_NAME}' tensor is accepted only when every feature is numeric; this "
                    f"model has categorical feature(s) {_names(sorted(self.categorical))}: send one input per "
                    f"feature (BYTES for categorical ones)"
                )
            expected = _names(self.feature_order)
            raise BadRequest(f"unexpected input(s) {_names(unexpected)}; expected one input per feature: {expected}")
        missing = [f for f in self.feature_order if f not in set(names)]
        if missing:
            raise BadRequest(f"missing input(s) for feature(s) {_names(missing)}")

    def _decode_feature_input(self, item: Mapping[str, Any], rows: Optional[int]) -> Tuple[int, Any]:
        """The row count and column of one per-feature v2 input.

        Args:
            item: The input, its fields already checked by :meth:`_check_input_fields`.
            rows: The row count of the inputs decoded before it (``None`` for the first).

        Raises:
            BadRequest: the shape is not ``[n]``/``[n, 1]`` or is empty, ``n`` differs from ``rows``, ``data``
                has another length, or the datatype or a value does not fit the feature's kind.
        """
        name = item["name"]
        shape = item["shape"]
        where = f"input {name!r}"
        if (len(shape) == 2 and shape[1] != 1) or len(shape) not in (1, 2):
            raise BadRequest(f"{where}: shape {shape} is not [n] or [n, 1]")
        n = shape[0]
        if n == 0:
            raise BadRequest(f"{where}: shape {shape} is empty; send at least one row")
        if rows is not None and n != rows:
            raise BadRequest(f"{where}: {n} rows, but the other inputs have {rows}")
        data = _flatten(item["data"], where)
        if len(data) != n:
            raise BadRequest(f"{where}: shape {shape} needs {n} values, 'data' has {len(data)}")
        datatype = item["datatype"]
        if name in self.categorical:
            if datatype != "BYTES":
                raise BadRequest(f"{where}: categorical feature needs datatype BYTES, got {datatype}")
            return n, categorical_column(data, name, strings_only=True)
        if datatype not in NUMERIC_DATATYPES:
            raise BadRequest(
                f"{where}: numeric feature needs a numeric datatype (FP32, FP64, INT64, ...), got {datatype}"
            )
        return n, numeric_column(data, name, integer_only=datatype in INT_DATATYPES)

    def _decode_tensor(
        self, item: Mapping[str, Any], request_id: Optional[str], outputs: Tuple[str, ...]
    ) -> DecodedRequest:
        where = _TENSOR_WHERE
        shape = item["shape"]
        k = len(self.feature_order)
        if len(shape) != 2 or shape[1] != k:
            raise BadRequest(f"{where}: shape {shape} is not [n, {k}] (columns in order {_names(self.feature_order)})")
        n = shape[0]
        if n == 0:
            raise BadRequest(f"{where}: shape {shape} is empty; send at least one row")
        datatype = item["datatype"]
        if datatype not in NUMERIC_DATATYPES:
            raise BadRequest(f"{where}: needs a numeric datatype (FP32, FP64, INT64, ...), got {datatype}")
        data = _flatten(item["data"], where)
        if len(data) != n * k:
            raise BadRequest(f"{where}: shape {shape} needs {n * k} values, 'data' has {len(data)}")
        matrix = numeric_column(data, TENSOR_INPUT_NAME, integer_only=datatype in INT_DATATYPES).reshape(n, k)
        return DecodedRequest(
            rows=n, request_id=request_id, outputs=outputs, matrix=matrix, feature_order=self.feature_order
        )

    @staticmethod
    def _check_input_fields(j: int, item: Any) -> None:
        if not isinstance(item, dict):
            raise BadRequest(f"inputs[{j}] must be an object with {list(V2_REQUIRED_INPUT_FIELDS)}")
        missing = [f for f in V2_REQUIRED_INPUT_FIELDS if f not in item]
        if missing or not isinstance(item["name"], str) or not item["name"]:
            RequestCodec._refuse_input_fields(j, item, missing)
        shape = item["shape"]
        if (
            not isinstance(shape, list)
            or not shape
            or not all(type(d) is int and d >= 0 for d in shape)  # bool is not a dimension
        ):
            raise BadRequest(
                f"{_input_label(j, item)}: 'shape' must be a non-empty list of non-negative integers, got {shape!r}"
            )
        datatype = item["datatype"]
        if not isinstance(datatype, str) or datatype not in KNOWN_DATATYPES:
            raise BadRequest(f"{_input_label(j, item)}: unknown datatype {datatype!r}")
        if not isinstance(item["data"], (list, np.ndarray)):
            raise BadRequest(f"{_input_label(j, item)}: 'data' must be a list")

    @staticmethod
    def _refuse_input_fields(j: int, item: Mapping[str, Any], missing: List[str]) -> None:
        """Raises the error for missing fields or a bad ``name`` (kept off the path of valid inputs)."""
        if missing:
            label = _input_label(j, item)
            params = item.get("parameters")
            if missing == ["data"] and isinstance(params, dict) and "binary_data_size" in params:
                raise BadRequest(
                    f"{label}: parameters.binary_data_size without the Inference-Header-Content-Length header "
                    "(binary tensor extension); send the header, or the values in 'data'"
                )
            raise BadRequest(f"{label} is missing required field(s) {missing}")
        raise BadRequest(f"inputs[{j}]: 'name' must be a non-empty string")

    @staticmethod
    def _requested_outputs(outputs: Any) -> Tuple[str, ...]:
        if outputs is None:
            return OUTPUT_NAMES
        if not isinstance(outputs, list):
            raise BadRequest("'outputs' must be a list of {\"name\": ...} objects")
        names = []
        for j, item in enumerate(outputs):
            name = item.get("name") if isinstance(item, dict) else None
            if name not in OUTPUT_NAMES:
                raise BadRequest(f"outputs[{j}]: unknown output {name!r}; this model has {list(OUTPUT_NAMES)}")
            names.append(name)
        return tuple(names) if names else OUTPUT_NAMES

    def encode_v2(self, decoded: DecodedRequest, probability: np.ndarray, labels: np.ndarray) -> Dict[str, Any]:
        """The OIP response; ``data`` are numpy arrays (serialize with ``orjson.OPT_SERIALIZE_NUMPY``)."""
        n = decoded.rows
        outputs = []
        for name in decoded.outputs:
            if name == PROBABILITY_OUTPUT:
                outputs.append({"name": name, "datatype": "FP32", "shape": [n], "data": probability.astype(np.float32)})
            else:
                outputs.append({"name": name, "datatype": "INT64", "shape": [n], "data": labels})
        response: Dict[str, Any] = {"model_name": self.model_name}
        if self.model_version is not None:
            response["model_version"] = self.model_version
        if decoded.request_id is not None:
            response["id"] = decoded.request_id
        response["outputs"] = outputs
        return response
