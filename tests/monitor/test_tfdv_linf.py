"""kfpkit's categorical L-infinity equals TFDV's drift comparator on the same data (TFDV env, to 1e-6)."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from demo import shifts
from kfpkit.components.monitor import logic
from kfpkit.components.validate.logic import ValidateError, resolve_tfdv_python
from kfpkit.core import monitoring_baseline as mb
from kfpkit.core.preprocessing import PreprocessingSpec

pytestmark = pytest.mark.tfdv

CATEGORICAL = list(shifts.CATEGORIES)

# runs in the TFDV interpreter: L-infinity of every categorical feature, live against reference
TFDV_SCRIPT = """
import json, sys
import pandas as pd
import tensorflow_data_validation as tfdv
reference = tfdv.generate_statistics_from_dataframe(pd.read_parquet(sys.argv[1]))
live = tfdv.generate_statistics_from_dataframe(pd.read_parquet(sys.argv[2]))
schema = tfdv.infer_schema(reference)
for feature in schema.feature:
    feature.drift_comparator.infinity_norm.threshold = 1.0
anomalies = tfdv.validate_statistics(live, schema, previous_statistics=reference)
print(json.dumps({".".join(i.path.step): i.drift_measurements[0].value for i in anomalies.drift_skew_info}))
"""


def test_categorical_linf_matches_tfdv(tmp_path):
    try:
        tfdv_python = resolve_tfdv_python()
    except ValidateError as exc:
        pytest.skip(f"TFDV environment missing (create it with `make setup`): {exc}")
    reference = pd.DataFrame(shifts.generate(20_000, seed=0))[CATEGORICAL]
    live = pd.DataFrame(shifts.generate(7_000, seed=5, shifts=["category_frequency", "new_category"]))[CATEGORICAL]
    live.loc[np.arange(0, 7_000, 9), "c35"] = None  # missing values count in neither
    reference.to_parquet(tmp_path / "reference.parquet")
    live.to_parquet(tmp_path / "live.parquet")

    spec = PreprocessingSpec.fit(reference.assign(y=0), "y")
    baseline = mb.build_baseline(reference, spec)
    counters, _, _ = logic.measure_window(
        baseline, logic.iter_window(str(tmp_path / "live.parquet"), baseline.feature_order)
    )
    ours = {name: logic.compare_categorical(baseline.feature(name), counters[name]).metrics["linf"].score
            for name in CATEGORICAL}  # fmt: skip

    proc = subprocess.run(
        [tfdv_python, "-c", TFDV_SCRIPT, str(tmp_path / "reference.parquet"), str(tmp_path / "live.parquet")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(theirs) == set(CATEGORICAL)
    for name in CATEGORICAL:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-6), name
    assert ours["c20"] > 0.1 and ours["c10"] > 0.04  # the shifted ones are far from 0
