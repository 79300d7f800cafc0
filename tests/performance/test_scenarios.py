"""The accuracy suite (seeded, small): every row of the scenario table of issue 20.

Traffic of :mod:`benchmarks.performance.traffic`: 12 days of 2,000 scored rows a day (the benchmark runs the
full size), labels late as chargebacks are (fraud after a median of 8 days), cohorts of a day, maturity 20 days.
"""

import numpy as np
import pandas as pd
import pytest

from kfpkit.components.monitor.logic import OutputPaths, run_monitor
from kfpkit.components.performance import logic

DAYS = 12
ROWS_PER_DAY = 2000
MATURED = "2026-02-02T00:00:00Z"  # every cohort's end + 20 days has passed
AT_THE_END = "2026-01-13T00:00:00Z"  # the day after the traffic: no cohort has matured


def test_no_change_no_cohort_is_degraded_over_20_seeds_matured_or_not(ph, tmp_path):
    false_alarms, calibration_failures, cohorts = [], 0, 0
    for seed in range(20):
        generated = ph.traffic.generate(DAYS * ROWS_PER_DAY, seed, "none", days=DAYS)
        for as_of in (MATURED, AT_THE_END):
            summary = ph.run(tmp_path, generated, f"none-{seed}", as_of)
            cohorts += len(summary.cohorts)
            false_alarms += [(seed, c.start, c.reasons) for c in summary.cohorts if c.degraded]
            calibration_failures += sum(c.calibration is not None and not c.calibration.passed for c in summary.cohorts)
    assert cohorts == 20 * 2 * DAYS
    assert false_alarms == []
    assert calibration_failures <= 2, f"{calibration_failures} of {20 * DAYS} matured cohorts failed calibration"


def test_labels_not_matured_are_estimated_only_and_never_degraded_for_missing_positives(ph, tmp_path):
    generated = ph.traffic.generate(DAYS * ROWS_PER_DAY, 3, "none", days=DAYS)
    summary = ph.run(tmp_path, generated, "immature", AT_THE_END)
    assert not any(c.mature for c in summary.cohorts)
    assert all(c.realized == {} and c.estimated["recall"].point is not None for c in summary.cohorts)
    # the labels known so far are mostly the fast legitimate ones: judged on them, recall would collapse
    last = summary.cohorts[-1]
    assert last.labelled > 0 and not last.degraded
    assert summary.degraded is False


def test_covariate_shift_estimates_hold_within_003_of_realized_on_20k_row_cohorts(ph, tmp_path):
    generated = ph.traffic.generate(6 * 20_000, 4, "covariate", days=6, change_day=3)
    summary = ph.run(tmp_path, generated, "covariate", MATURED, resamples=100)
    errors = []
    for cohort in summary.cohorts:
        assert cohort.mature and 19_000 < cohort.rows < 21_000
        for name in ("precision", "recall"):
            errors.append(abs(cohort.estimated[name].point - cohort.realized[name].point))
    assert max(errors) <= 0.03, errors
    shifted = summary.cohorts[3:]
    assert all(
        c.estimated["positive_rate"].point > summary.cohorts[0].estimated["positive_rate"].point for c in shifted
    )
    assert not summary.degraded
    assert all(c.calibration.passed for c in summary.cohorts)


def test_concept_drift_leaves_the_drift_monitor_silent_and_the_first_matured_cohort_after_it_degraded(ph, tmp_path):
    generated = ph.traffic.generate(DAYS * ROWS_PER_DAY, 5, "concept", days=DAYS, change_day=6)
    after = generated.frame[generated.frame["timestamp"] >= pd.Timestamp("2026-01-07", tz="UTC")]
    window = tmp_path / "after-the-change.parquet"
    after[["segment", "amount", "velocity", "score"]].to_parquet(window, index=False)
    monitored = run_monitor(ph.model_dir, str(window), OutputPaths())
    assert not monitored.drift_detected, monitored.drifted_features  # P(x) and the scores did not move

    summary = ph.run(tmp_path, generated, "concept", MATURED)
    before, changed = summary.cohorts[:6], summary.cohorts[6:]
    assert not any(c.degraded for c in before)
    assert changed[0].mature and changed[0].degraded
    assert any("realized recall" in reason for reason in changed[0].reasons)
    assert all(not c.calibration.passed for c in changed)
    # the estimate cannot see it: before the labels mature the same cohorts look fine
    early = ph.run(tmp_path, generated, "concept-early", AT_THE_END)
    assert not early.degraded


def test_out_of_order_duplicate_corrected_and_unknown_labels_are_counted_exactly(ph, tmp_path):
    generated = ph.traffic.generate(4000, 6, "none", days=2)
    labels, mess = ph.traffic.messy_labels(ph.traffic.labels_frame(generated), seed=6)
    summary = ph.run(tmp_path, generated, "messy", "2026-03-01T00:00:00Z", labels=labels)
    counts = summary.label_counts
    assert counts.rows == 4000 + mess.duplicates + mess.corrected + mess.unknown
    assert counts.after_as_of == 0
    assert counts.keys == 4000 + mess.unknown
    assert counts.superseded == mess.duplicates + mess.corrected
    assert counts.duplicates == mess.duplicates
    assert counts.conflicting_keys == mess.corrected
    assert counts.unknown_keys == mess.unknown
    assert counts.matched == 4000
    assert counts.out_of_order > 0  # shuffled
    stamps = pd.to_datetime(labels["labelled_at"], format="ISO8601").to_numpy()
    assert counts.out_of_order == int(np.sum(stamps[1:] < np.maximum.accumulate(stamps)[:-1]))
    # the corrections won: every scored row carries its true label
    assert sum(c.labelled for c in summary.cohorts) == 4000
    realized = summary.cohorts[0].realized["positive_rate"].point
    assert realized == pytest.approx(generated.truth[: summary.cohorts[0].rows].mean(), abs=1e-6)


def test_cohorts_judged_on_several_threads_give_the_summary_of_one_thread(ph, tmp_path, monkeypatch):
    generated = ph.traffic.generate(6 * 3000, 8, "covariate", days=6, change_day=3)
    monkeypatch.setattr(logic, "_cores", lambda: 4)  # threads even on a one-core runner
    threaded = ph.run(tmp_path, generated, "threads", MATURED, resamples=50)
    monkeypatch.setattr(logic, "_cores", lambda: 1)
    single = ph.run(tmp_path, generated, "one-thread", MATURED, resamples=50)
    assert logic._cores() == 1 and len(threaded.cohorts) == 6
    assert threaded.cohorts == single.cohorts  # dataclasses: every figure and reason
    assert threaded.label_counts == single.label_counts
    assert logic.in_parallel(lambda x: x * x, list(range(9))) == [x * x for x in range(9)]
