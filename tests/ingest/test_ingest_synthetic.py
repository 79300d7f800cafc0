"""The synthetic card-transaction generator: columns, determinism, fraud signal and drift."""

import math

import numpy as np
import pandas as pd
import pytest

from kfpkit.components.ingest.errors import IngestError
from kfpkit.components.ingest.synthetic import COLUMNS, generate_fraud

EXPECTED_DTYPES = {
    "transaction_id": "object",
    "amount": "float64",
    "merchant_category": "object",
    "channel": "object",
    "country": "object",
    "hour": "int64",
    "device": "object",
    "distance_from_home_km": "float64",
    "transactions_last_24h": "int64",
    "account_age_days": "int64",
    "is_fraud": "int64",
}


@pytest.fixture(scope="module")
def base():
    return generate_fraud(60_000, seed=11)


@pytest.fixture(scope="module")
def drifted():
    return generate_fraud(60_000, seed=11, drift=1.0)


def test_frame_has_the_documented_columns_in_order_with_their_dtypes(base):
    assert list(base.columns) == list(COLUMNS) == list(EXPECTED_DTYPES)
    assert {c: str(t) for c, t in base.dtypes.items()} == EXPECTED_DTYPES
    assert set(base["is_fraud"].unique()) == {0, 1}
    assert base["hour"].between(0, 23).all()
    assert (base["amount"] > 0).all() and (base["distance_from_home_km"] >= 0).all()
    assert (base["account_age_days"] >= 1).all() and (base["transactions_last_24h"] >= 0).all()
    assert not base.isna().any().any()


def test_same_arguments_give_identical_frames_and_another_seed_differs():
    first = generate_fraud(2_000, seed=5, fraud_rate=0.05, drift=0.3)
    second = generate_fraud(2_000, seed=5, fraud_rate=0.05, drift=0.3)
    other = generate_fraud(2_000, seed=6, fraud_rate=0.05, drift=0.3)
    pd.testing.assert_frame_equal(first, second)
    assert not first["amount"].equals(other["amount"])


def test_transaction_ids_are_unique_and_derived_from_seed_and_row_number():
    frame = generate_fraud(1_500, seed=42)
    ids = frame["transaction_id"]
    assert ids.is_unique
    assert ids.iloc[0] == "tx-42-000000000" and ids.iloc[1499] == "tx-42-000001499"
    assert set(generate_fraud(10, seed=43)["transaction_id"]).isdisjoint(ids)


@pytest.mark.parametrize("fraud_rate", [0.02, 0.1])
def test_realized_fraud_rate_is_near_the_target(fraud_rate):
    realized = generate_fraud(100_000, seed=3, fraud_rate=fraud_rate)["is_fraud"].mean()
    # binomial standard error at 100k rows is < 0.001; allow a few of them
    assert abs(realized - fraud_rate) < 0.1 * fraud_rate, realized


def test_a_logistic_regression_on_numeric_columns_beats_0_75_roc_auc():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    def features(frame):
        raw = np.column_stack(
            [
                np.log(frame["amount"]),
                frame["hour"] < 6,
                np.log1p(frame["distance_from_home_km"]),
                frame["transactions_last_24h"],
                np.log(frame["account_age_days"]),
            ]
        ).astype(float)
        return (raw - scale[0]) / scale[1]

    train = generate_fraud(30_000, seed=1, fraud_rate=0.05)
    test = generate_fraud(20_000, seed=2, fraud_rate=0.05)
    scale = (0.0, 1.0)
    scale = (features(train).mean(axis=0), features(train).std(axis=0))
    model = LogisticRegression(max_iter=1000).fit(features(train), train["is_fraud"])
    auc = roc_auc_score(test["is_fraud"], model.predict_proba(features(test))[:, 1])
    assert 0.75 < auc < 0.97, auc


def test_signal_features_carry_more_fraud(base):
    rate = base.groupby("device")["is_fraud"].mean()
    assert rate["new_device"] > 2 * rate["pos_terminal"]
    foreign = base["country"] != "US"
    assert base.loc[foreign, "is_fraud"].mean() > 2 * base.loc[~foreign, "is_fraud"].mean()
    night = base["hour"] < 6
    assert base.loc[night, "is_fraud"].mean() > 2 * base.loc[~night, "is_fraud"].mean()


def test_drift_shifts_the_documented_distributions(base, drifted):
    assert drifted["amount"].median() / base["amount"].median() > 1.3
    share = lambda frame, column, value: (frame[column] == value).mean()  # noqa: E731
    assert share(drifted, "channel", "online") - share(base, "channel", "online") > 0.12
    assert share(drifted, "channel", "in_store") < share(base, "channel", "in_store") - 0.15
    assert share(base, "country", "US") == pytest.approx(0.94, abs=0.01)
    assert share(drifted, "country", "US") == pytest.approx(0.80, abs=0.01)
    assert share(drifted, "device", "new_device") > 2.5 * share(base, "device", "new_device")
    for category in ("electronics", "digital_goods", "travel"):
        assert share(drifted, "merchant_category", category) > 1.5 * share(base, "merchant_category", category)
    assert drifted["distance_from_home_km"].quantile(0.9) > base["distance_from_home_km"].quantile(0.9)


def test_drift_adds_the_unseen_wearable_device_only_when_positive(base, drifted):
    assert "wearable" not in set(base["device"])
    assert (drifted["device"] == "wearable").mean() == pytest.approx(0.08, abs=0.015)
    assert 0 < (generate_fraud(20_000, seed=2, drift=0.3)["device"] == "wearable").mean() < 0.05


def test_drift_leaves_hour_transactions_and_account_age_unchanged(base, drifted):
    for column in ("hour", "transactions_last_24h", "account_age_days"):
        assert drifted[column].mean() == pytest.approx(base[column].mean(), rel=0.02), column
        assert drifted[column].quantile(0.9) == pytest.approx(base[column].quantile(0.9), rel=0.05), column


def test_drift_raises_the_fraud_rate_because_only_features_move(base, drifted):
    assert drifted["is_fraud"].mean() > 2.5 * base["is_fraud"].mean()


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"rows": 0}, "'rows'"),
        ({"rows": 2.5}, "'rows'"),
        ({"rows": True}, "'rows'"),
        ({"rows": 10, "seed": -1}, "'seed'"),
        ({"rows": 10, "fraud_rate": 0.0}, "'fraud_rate'"),
        ({"rows": 10, "fraud_rate": 1.5}, "'fraud_rate'"),
        ({"rows": 10, "drift": 1.5}, "'drift'"),
        ({"rows": 10, "drift": math.nan}, "'drift'"),
        ({"rows": 10, "drift": "high"}, "'drift'"),
    ],
)
def test_bad_generator_parameters_fail_naming_the_parameter(kwargs, named):
    with pytest.raises(IngestError, match=named):
        generate_fraud(**kwargs)
