"""The monitoring baseline profile: built once from training rows, validated on read, mergeable counts."""

import json
import os

import numpy as np
import pytest

from demo import shifts
from kfpkit.components.monitor import logic
from kfpkit.core import monitoring_baseline as mb


def test_profile_holds_quantile_bins_top_values_missing_counts_and_the_score(baseline):
    f00 = baseline.feature("f00")
    assert 15 <= len(f00.edges) <= 19 and len(f00.counts) == len(f00.edges) + 1
    assert sum(f00.counts) + f00.missing == baseline.rows
    # quantile bins: every bin holds about 1/20 of the training rows
    assert max(f00.counts) / baseline.rows < 0.08
    poisson = baseline.feature("i_poisson")
    assert len(poisson.edges) < 19  # discrete values collapse duplicate quantiles
    c50 = baseline.feature("c50")
    assert c50.values[0] == "c50_v00" and len(c50.values) == 50 and c50.other == 0
    assert baseline.score is not None and baseline.score_rows == 20_000
    assert set(baseline.identity) == {"preprocessing.json", "model.skops"}


def test_read_refuses_a_missing_or_malformed_profile(tmp_path, model_dir):
    with pytest.raises(mb.BaselineError, match="no monitoring_baseline.json"):
        mb.read_baseline(str(tmp_path))
    doc = json.load(open(os.path.join(model_dir, mb.BASELINE_FILE)))
    doc["numeric"][0]["counts"] = doc["numeric"][0]["counts"][:-1]
    (tmp_path / mb.BASELINE_FILE).write_text(json.dumps(doc))
    with pytest.raises(mb.BaselineError, match="feature 'f00' has .* edges but .* counts"):
        mb.read_baseline(str(tmp_path))
    doc["format_version"] = 99
    (tmp_path / mb.BASELINE_FILE).write_text(json.dumps(doc))
    with pytest.raises(mb.BaselineError, match="format_version 99"):
        mb.read_baseline(str(tmp_path))


def test_counts_of_partitions_add_up_to_the_counts_of_the_whole_window(baseline):
    table = shifts.to_arrow(shifts.generate(30_000, seed=5))
    whole, _, _ = logic.measure_window(baseline, [("w", b) for b in table.to_batches(30_000)])
    parts = [logic.measure_window(baseline, [("p", b)])[0] for b in table.to_batches(7_000)]
    for name in ("f00", "i_poisson"):
        assert np.array_equal(sum(p[name].counts for p in parts), whole[name].counts)
    assert np.array_equal(sum(p["c35"].counts for p in parts), whole["c35"].counts)
