"""The one preprocessing implementation shared by train, evaluate and serving.

A :class:`PreprocessingSpec` is fitted on the training split and saved as ``preprocessing.json`` in the
model directory. It turns a table of raw features into two arrays:

* ``numeric``: float32 ``[n, len(numeric)]`` -- missing values filled with the training median, then
  standardized with the training mean and standard deviation;
* ``categorical``: int64 ``[n, len(categorical)]`` -- index into the feature's vocabulary, where index 0
  is the unknown bucket (unseen category or missing value) and known values start at 1.

The spec is plain JSON (no pickles) so that serving can load it from an untrusted registry.

This module imports only numpy (and pandas lazily, for DataFrame input): the serving hot path calls
:meth:`PreprocessingSpec.transform_columns` with plain Python/numpy columns.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

FORMAT_VERSION = 1
UNKNOWN_INDEX = 0
DEFAULT_MAX_VOCABULARY = 1000
# A categorical column with more distinct values than this fraction of the rows is an identifier
# (transaction id, customer id, ...): it cannot generalize, so it is not used as a feature.
DEFAULT_MAX_UNIQUE_FRACTION = 0.5
MIN_ROWS_FOR_IDENTIFIER_RULE = 20


class PreprocessingError(ValueError):
    """Input that the spec cannot transform (missing feature, non-numeric value, ...)."""


@dataclass(frozen=True)
class NumericFeature:
    """A numeric feature: missing values become ``fill`` (the training median), then ``(x - mean) / std``.

    ``std`` is 1.0 for a constant column, so that a constant never divides by zero.
    """

    name: str
    mean: float
    std: float
    fill: float


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical feature: value ``vocabulary[i]`` encodes as ``i + 1``, anything else as ``UNKNOWN_INDEX``.

    Values are compared by their canonical string form, so 3, 3.0 and ``"3"`` are one category.
    """

    name: str
    vocabulary: List[str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {v: i + 1 for i, v in enumerate(self.vocabulary)})

    @property
    def cardinality(self) -> int:
        """Embedding table size: the vocabulary plus the unknown bucket."""
        return len(self.vocabulary) + 1

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        """Vocabulary indices (int64) of ``values``: ``UNKNOWN_INDEX`` for unseen or missing ones."""
        return np.array(self.codes(values), dtype=np.int64).reshape(len(values))

    def codes(self, values: Sequence[Any]) -> List[int]:
        """:meth:`encode` as a list (what :meth:`PreprocessingSpec.transform_columns` assigns in place)."""
        index: Dict[str, int] = self._index  # type: ignore[attr-defined]
        # a str is its own key (the common case, v2 BYTES); anything else goes through _category_key
        return [index.get(v if type(v) is str else _category_key(v), UNKNOWN_INDEX) for v in values]


def _category_key(value: Any) -> str:
    """Canonical string form of a categorical value (so 3, 3.0 and '3' from JSON/CSV agree)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    if isinstance(value, (np.floating,)):
        return _category_key(float(value))
    return str(value)


def _category_keys(series: Any) -> Any:
    """:func:`_category_key` of every value of a pandas Series; an object column of strings is its own keys.

    A ``str`` is its own key, so the per-value call is skipped when pandas finds only strings (no ``None``
    or NaN) in an object column: the same keys, without a Python call per row (0.2 s of train at 70k rows).
    """
    from pandas.api.types import infer_dtype

    if series.dtype == object and infer_dtype(series, skipna=False) == "string":
        return series
    return series.map(_category_key)


def is_categorical_dtype(dtype: Any) -> bool:
    """Columns of object/string/category/bool dtype are categorical; numbers are numeric."""
    kind = getattr(dtype, "kind", "O")
    return kind in ("O", "U", "S", "b") or str(dtype) in ("category", "string")


@dataclass
class PreprocessingSpec:
    """Feature order, kinds, vocabularies and scaling fitted on the training split."""

    label_column: str
    numeric: List[NumericFeature] = field(default_factory=list)
    categorical: List[CategoricalFeature] = field(default_factory=list)
    feature_order: List[str] = field(default_factory=list)
    ignored_columns: List[str] = field(default_factory=list)
    format_version: int = FORMAT_VERSION

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(
        cls,
        frame: Any,
        label_column: str,
        feature_columns: Optional[Sequence[str]] = None,
        categorical_columns: Optional[Sequence[str]] = None,
        max_vocabulary: int = DEFAULT_MAX_VOCABULARY,
        max_unique_fraction: float = DEFAULT_MAX_UNIQUE_FRACTION,
    ) -> PreprocessingSpec:
        """Fits the spec on a pandas DataFrame.

        Args:
            frame: Training rows (pandas DataFrame).
            label_column: Name of the binary label; excluded from the features.
            feature_columns: Features to use, in order; default: every column but the label.
            categorical_columns: Columns to treat as categorical regardless of dtype; by default
                object/string/category/bool columns are categorical and the rest numeric.
            max_vocabulary: Most frequent values kept per categorical feature; rarer ones map to the
                unknown bucket.
            max_unique_fraction: When ``feature_columns`` is not given, categorical columns with more
                distinct values than this fraction of the rows are identifiers: they are left out and
                listed in :attr:`ignored_columns` (serving accepts and ignores them).

        Raises:
            PreprocessingError: a named column is missing, or there are no features.
        """
        columns = list(feature_columns) if feature_columns else [c for c in frame.columns if c != label_column]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise PreprocessingError(f"feature column(s) not in the data: {missing}")
        if not columns:
            raise PreprocessingError("no feature columns besides the label column")
        forced = set(categorical_columns or ())
        numeric: List[NumericFeature] = []
        categorical: List[CategoricalFeature] = []
        ignored: List[str] = []
        for name in columns:
            series = frame[name]
            if name in forced or is_categorical_dtype(series.dtype):
                keys = _category_keys(series)
                keys = keys[keys != ""]
                counts = keys.value_counts(sort=False)
                if (
                    not feature_columns
                    and len(frame) >= MIN_ROWS_FOR_IDENTIFIER_RULE
                    and len(counts) > max_unique_fraction * len(frame)
                ):
                    ignored.append(name)
                    continue
                # most frequent first, ties broken by value: deterministic across pandas versions
                ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_vocabulary]
                categorical.append(CategoricalFeature(name=name, vocabulary=[k for k, _ in ordered]))
            else:
                values = series.to_numpy(dtype="float64", na_value=np.nan)
                finite = values[np.isfinite(values)]
                if finite.size == 0:
                    mean, std, fill = 0.0, 1.0, 0.0
                else:
                    mean = float(finite.mean())
                    std = float(finite.std())
                    fill = float(np.median(finite))
                numeric.append(NumericFeature(name=name, mean=mean, std=std if std > 1e-12 else 1.0, fill=fill))
        features = [c for c in columns if c not in ignored]
        if not features:
            raise PreprocessingError(f"no usable feature columns: {ignored} look like identifiers")
        return cls(
            label_column=label_column,
            numeric=numeric,
            categorical=categorical,
            feature_order=features,
            ignored_columns=ignored,
        )

    # ---------------------------------------------------------------- properties
    @property
    def numeric_names(self) -> List[str]:
        """Names of the numeric features, in the column order of the ``numeric`` array."""
        return [f.name for f in self.numeric]

    @property
    def categorical_names(self) -> List[str]:
        """Names of the categorical features, in the column order of the ``categorical`` array."""
        return [f.name for f in self.categorical]

    @property
    def cardinalities(self) -> List[int]:
        """Embedding table size of each categorical feature (vocabulary plus the unknown bucket)."""
        return [f.cardinality for f in self.categorical]

    def kind_of(self, name: str) -> str:
        """``"numeric"`` or ``"categorical"``."""
        return "numeric" if name in self.numeric_names else "categorical"

    # ---------------------------------------------------------------- transform
    def transform(self, frame: Any) -> Tuple[np.ndarray, np.ndarray]:
        """Transforms a pandas DataFrame (extra columns, e.g. the label, are ignored)."""
        missing = [c for c in self.feature_order if c not in frame.columns]
        if missing:
            raise PreprocessingError(f"missing feature column(s): {missing}")
        return self.transform_columns({c: frame[c].to_numpy() for c in self.feature_order})

    def transform_columns(self, columns: Mapping[str, Sequence[Any]]) -> Tuple[np.ndarray, np.ndarray]:
        """Transforms a mapping ``feature name -> column of values`` (lists or numpy arrays).

        The numeric columns are filled and standardized together, as one float64 ``[n, k]`` matrix against
        the spec's fill/mean/std vectors, then cast to float32 once: the same per-element operations as a
        column at a time, without the per-column numpy calls (the serving hot path scores one row).

        Raises:
            PreprocessingError: a feature is missing, columns differ in length, or a numeric feature
                holds a value that is not a number (a boolean included).
        """
        missing = [c for c in self.feature_order if c not in columns]
        if missing:
            raise PreprocessingError(f"missing feature(s): {missing}")
        n = len(columns[self.feature_order[0]])
        values = np.empty((n, len(self.numeric)), dtype=np.float64)
        for j, feat in enumerate(self.numeric):
            col = columns[feat.name]
            if len(col) != n:
                raise PreprocessingError(f"feature {feat.name!r} has {len(col)} values, expected {n}")
            # a numeric ndarray (what the serving decoder gives) is cast on assignment, as _as_float would
            values[:, j] = col if type(col) is np.ndarray and col.dtype.kind in "fiub" else _as_float(col, feat.name)
        numeric = self._standardized(values)
        categorical = np.empty((n, len(self.categorical)), dtype=np.int64)
        for j, cfeat in enumerate(self.categorical):
            col = columns[cfeat.name]
            if len(col) != n:
                raise PreprocessingError(f"feature {cfeat.name!r} has {len(col)} values, expected {n}")
            categorical[:, j] = cfeat.codes(col)
        return numeric, categorical

    def transform_matrix(self, matrix: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Transforms a numeric ``[n, len(feature_order)]`` matrix whose columns follow :attr:`feature_order`.

        The same result as :meth:`transform_columns` on its columns, for a spec without categorical
        features (the serving ``features`` tensor), with one copy instead of one assignment per column.
        ``matrix`` is not modified.

        Raises:
            PreprocessingError: the spec has categorical features, or the matrix is not 2-D of that width.
        """
        if self.categorical:
            raise PreprocessingError(
                f"a feature matrix holds numeric features only; this spec has categorical feature(s) "
                f"{[c.name for c in self.categorical]}"
            )
        if matrix.ndim != 2 or matrix.shape[1] != len(self.feature_order):
            raise PreprocessingError(
                f"feature matrix of shape {list(matrix.shape)} is not [n, {len(self.feature_order)}]"
            )
        positions = self._numeric_positions()
        values = (
            np.array(matrix, dtype=np.float64)
            if positions is None
            else np.array(matrix[:, positions], dtype=np.float64, order="C")
        )
        return self._standardized(values), np.empty((matrix.shape[0], 0), dtype=np.int64)

    def _standardized(self, values: np.ndarray) -> np.ndarray:
        """float32 ``(values - mean) / std`` with non-finite values filled first; ``values`` is reused."""
        fill, mean, std = self._numeric_vectors()
        finite = np.isfinite(values)
        if np.count_nonzero(finite) != finite.size:  # count_nonzero: a fraction of .all()'s per-call cost
            np.copyto(values, fill, where=~finite)
        values -= mean
        values /= std
        return values.astype(np.float32)

    def _derived(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()``, kept under ``key`` until :attr:`numeric` or :attr:`feature_order` changes.

        The value is built again when either list is replaced or resized; it is the cache of
        :meth:`_numeric_vectors` and :meth:`_numeric_positions`.
        """
        numeric, order = self.numeric, self.feature_order
        sizes = (len(numeric), len(order))
        cached = self.__dict__.get(key)
        if cached is None or cached[0] is not numeric or cached[1] is not order or cached[2] != sizes:
            cached = (numeric, order, sizes, build())
            self.__dict__[key] = cached
        return cached[3]

    def _numeric_positions(self) -> Optional[List[int]]:
        """Columns of :attr:`numeric` in :attr:`feature_order`, or ``None`` when they are the same order."""

        def build() -> Optional[List[int]]:
            positions = [self.feature_order.index(f.name) for f in self.numeric]
            return None if positions == list(range(len(self.feature_order))) else positions

        return self._derived("_positions", build)

    def _numeric_vectors(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(fill, mean, std)`` float64 vectors of :attr:`numeric`."""
        return self._derived(
            "_vectors",
            lambda: tuple(
                np.array([getattr(f, name) for f in self.numeric], dtype=np.float64) for name in ("fill", "mean", "std")
            ),
        )

    def transform_rows(self, rows: Sequence[Sequence[Any]]) -> Tuple[np.ndarray, np.ndarray]:
        """Transforms rows given as lists in :attr:`feature_order`."""
        width = len(self.feature_order)
        for i, row in enumerate(rows):
            if len(row) != width:
                raise PreprocessingError(f"row {i} has {len(row)} values, expected {width} ({self.feature_order})")
        columns = {name: [row[j] for row in rows] for j, name in enumerate(self.feature_order)}
        return self.transform_columns(columns)

    # ---------------------------------------------------------------- (de)serialization
    def to_dict(self) -> Dict[str, Any]:
        """The JSON document of ``preprocessing.json``."""
        return {
            "format_version": self.format_version,
            "label_column": self.label_column,
            "feature_order": list(self.feature_order),
            "ignored_columns": list(self.ignored_columns),
            "numeric": [asdict(f) for f in self.numeric],
            "categorical": [{"name": f.name, "vocabulary": list(f.vocabulary)} for f in self.categorical],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessingSpec:
        """The spec of a ``preprocessing.json`` document.

        Raises:
            PreprocessingError: the document has another ``format_version``.
        """
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise PreprocessingError(
                f"unsupported preprocessing format_version {version!r} (expected {FORMAT_VERSION})"
            )
        return cls(
            label_column=data["label_column"],
            numeric=[NumericFeature(**f) for f in data["numeric"]],
            categorical=[
                CategoricalFeature(name=f["name"], vocabulary=list(f["vocabulary"])) for f in data["categorical"]
            ],
            feature_order=list(data["feature_order"]),
            ignored_columns=list(data.get("ignored_columns", [])),
        )

    def save(self, path: str) -> None:
        """Writes the spec as JSON to ``path``."""
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str) -> PreprocessingSpec:
        """Reads a spec written by :meth:`save` (see :meth:`from_dict`)."""
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))


def _as_float(col: Sequence[Any], name: str) -> np.ndarray:
    if isinstance(col, np.ndarray) and col.dtype.kind in "fiub":
        return col.astype(np.float64, copy=False)
    out = np.empty(len(col), dtype=np.float64)
    for i, v in enumerate(col):
        if v is None:
            out[i] = np.nan
        elif isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise PreprocessingError(f"feature {name!r} is numeric but value #{i} is {v!r}")
        else:
            out[i] = v
    return out
