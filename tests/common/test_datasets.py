"""Reading a split: each way a file can be unusable gives one error naming the file and column."""

import pandas as pd
import pytest

from kfpkit.core.datasets import read_split_frame


class SplitError(ValueError):
    pass


def test_reads_a_parquet_split_with_its_required_columns(tmp_path):
    pd.DataFrame({"x": [1, 2], "y": [0, 1]}).to_parquet(tmp_path / "s.parquet")
    frame = read_split_frame(str(tmp_path / "s.parquet"), "eval data", required=[("label", "y"), ("slice", None)])
    assert list(frame.columns) == ["x", "y"] and len(frame) == 2


def test_each_problem_raises_the_callers_error_naming_file_and_column(tmp_path):
    path = tmp_path / "s.parquet"
    with pytest.raises(SplitError, match=r"train data .*s\.parquet: no such file"):
        read_split_frame(str(path), "train data", error=SplitError)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SplitError, match="not a readable Parquet file"):
        read_split_frame(str(path), "train data", error=SplitError)
    pd.DataFrame({"x": pd.Series([], dtype="int64")}).to_parquet(path)
    with pytest.raises(SplitError, match=r"label column 'y' not found; columns: \['x'\]"):
        read_split_frame(str(path), "train data", error=SplitError, required=[("label", "y")])
    with pytest.raises(SplitError, match="no rows"):
        read_split_frame(str(path), "train data", error=SplitError, allow_empty=False)
