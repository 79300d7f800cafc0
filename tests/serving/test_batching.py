"""Adaptive micro-batching of the fast path: requests that reach the event loop together are scored as one
batch (KfpkitModel.score_batch, fast_path.InferenceBatcher), and each still gets what it would get alone."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from kfpkit.serving import payloads
from kfpkit.serving.protocol import BadRequest


@pytest.fixture(scope="module")
def numeric_dir(tmp_path_factory, frame, kit):
    columns = ["amount", "hour", "distance_km", kit.LABEL]
    return kit.build_sklearn_dir(str(tmp_path_factory.mktemp("batch") / "numeric"), frame[columns])


@pytest.fixture(params=["sklearn", "pytorch"])
def served(request, sklearn_dir, torch_dir, kit):
    directory = sklearn_dir if request.param == "sklearn" else torch_dir
    return kit.serve_app(directory, f"batch-{request.param}")


def _body(model, rows, **kwargs):
    spec = model.loaded.spec
    return payloads.v2_body(rows, spec.feature_order, spec.categorical_names, **kwargs)


def _record_batches(model):
    """The sizes of the batches ``model.score_batch`` gets from now on (row counts per request)."""
    batches = []
    score_batch = model.score_batch

    def recording(batch):
        batches.append([d.rows for d in batch])
        return score_batch(batch)

    model.score_batch = recording
    return batches


def _parts(frame):
    return [frame.iloc[0:1], frame.iloc[1:4], frame.iloc[4:5], frame.iloc[5:12]]


def test_a_batch_scores_every_request_as_it_would_be_scored_alone(served, frame):
    _, model = served
    alone = [model.score(model.decode("v2", _body(model, rows))) for rows in _parts(frame)]
    together = model.score_batch([model.decode("v2", _body(model, rows)) for rows in _parts(frame)])
    assert len(together) == len(alone)
    for (p_alone, l_alone), (p_batch, l_batch) in zip(alone, together, strict=True):
        np.testing.assert_allclose(p_batch, p_alone, rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(l_batch, l_alone)


def test_features_tensors_are_stacked_into_one_batch_with_offline_probabilities(numeric_dir, frame, kit):
    _, model = kit.serve_app(numeric_dir, "batch-tensor")
    order = model.loaded.spec.feature_order
    parts = [frame.iloc[i : i + 2] for i in range(0, 8, 2)]
    decoded = [model.decode("v2", payloads.v2_body(rows, order, as_tensor=True)) for rows in parts]
    assert all(d.matrix is not None for d in decoded)
    for rows, (probability, _) in zip(parts, model.score_batch(decoded), strict=True):
        np.testing.assert_allclose(probability, model.loaded.predict_proba(rows), rtol=1e-6, atol=1e-9)


def test_a_refused_request_in_a_batch_gets_its_own_error_and_the_others_are_scored(served, frame):
    _, model = served
    numeric = model.loaded.spec.numeric[0].name
    bad = model.decode("v2", _body(model, frame.iloc[3:5]))
    bad.columns[numeric] = ["a lot", 1.0]  # a value the preprocessing spec refuses
    good = [model.decode("v2", _body(model, frame.iloc[i : i + 1])) for i in range(3)]
    results = model.score_batch([good[0], bad, good[1], good[2]])
    assert isinstance(results[1], BadRequest) and numeric in str(results[1])
    for i, result in zip(range(3), [results[0], results[2], results[3]], strict=True):
        expected, _ = model.score(model.decode("v2", _body(model, frame.iloc[i : i + 1])))
        np.testing.assert_allclose(result[0], expected, rtol=1e-6, atol=1e-9)


def test_a_non_finite_score_fails_only_the_request_it_belongs_to(sklearn_dir, frame, kit, monkeypatch):
    _, model = kit.serve_app(sklearn_dir, "batch-nan")
    real = model.loaded.predict_proba_arrays

    def second_row_nan(numeric, categorical):
        out = real(numeric, categorical)
        out[1] = np.nan
        return out

    monkeypatch.setattr(model.loaded, "predict_proba_arrays", second_row_nan)
    # rows 0 | 1, 2 | 3: the NaN is the first row of the second request, whose other row is finite
    decoded = [model.decode("v2", _body(model, rows)) for rows in (frame.iloc[0:1], frame.iloc[1:3], frame.iloc[3:4])]
    observed = _observed_scores(model)
    results = model.score_batch(decoded)
    assert isinstance(results[1], BadRequest) and "row #0: the model gives no finite score" in str(results[1])
    assert not isinstance(results[0], BadRequest) and not isinstance(results[2], BadRequest)
    assert _observed_scores(model) - observed == 2  # the refused request's finite row is not counted, as alone


def _observed_scores(model) -> float:
    """How many scores the model's ``kfpkit_prediction_score`` histogram has counted."""
    buckets, _ = model.metrics.score.snapshot()
    le, count = buckets[-1]
    assert le == "+Inf"
    return count


def test_tensors_beside_per_feature_inputs_are_scored_one_by_one(numeric_dir, frame, kit):
    _, model = kit.serve_app(numeric_dir, "batch-mixed")
    order = model.loaded.spec.feature_order
    tensor = model.decode("v2", payloads.v2_body(frame.iloc[:2], order, as_tensor=True))
    columns = model.decode("v2", payloads.v2_body(frame.iloc[2:3], order))
    v1 = model.decode("v1", payloads.v1_body(frame.iloc[3:5], order))
    results = model.score_batch([tensor, columns, v1])
    expected = model.loaded.predict_proba(frame.iloc[:5])
    np.testing.assert_allclose(np.concatenate([r[0] for r in results]), expected, rtol=1e-6, atol=1e-9)


def test_concurrent_requests_through_the_app_are_batched_and_each_gets_its_own_answer(served, frame, kit):
    app, model = served
    batches = _record_batches(model)
    parts = [frame.iloc[i : i + 1 + i % 3] for i in range(8)]
    bad = {"inputs": [{"name": "amount", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
    path = f"/v2/models/{model.name}/infer"

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            calls = [client.post(path, json=_body(model, rows, request_id=f"r-{i}")) for i, rows in enumerate(parts)]
            return await asyncio.gather(*calls, client.post(path, json=bad))

    *responses, refused = asyncio.run(run())
    sizes = [len(b) for b in batches]
    assert max(sizes) > 1 and sum(sizes) == len(parts)  # the bad one is refused at decode, before batching
    assert refused.status_code == 400 and "missing input" in refused.json()["error"]
    for i, (rows, response) in enumerate(zip(parts, responses, strict=True)):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == f"r-{i}"
        probability = next(o for o in body["outputs"] if o["name"] == "probability")
        np.testing.assert_allclose(probability["data"], model.loaded.predict_proba(rows), rtol=1e-6, atol=1e-7)


def test_the_batcher_flushes_before_a_batch_would_exceed_its_row_limit(served, frame):
    from kfpkit.serving.fast_path import InferenceBatcher

    _, model = served
    batcher = InferenceBatcher(model, max_rows=4)
    batches = _record_batches(model)

    async def run():
        futures = [batcher.submit(model.decode("v2", _body(model, frame.iloc[:n]))) for n in (2, 2, 3, 1)]
        return await asyncio.gather(*futures)

    results = asyncio.run(run())
    assert batches == [[2, 2], [3, 1]]
    assert [len(p) for p, _ in results] == [2, 2, 3, 1]


def test_micro_batching_off_scores_every_request_alone(sklearn_dir, frame):
    from kfpkit.serving.predictor import KfpkitModel
    from kfpkit.serving.server import KfpkitModelServer

    model = KfpkitModel("unbatched", sklearn_dir)
    assert model.load()
    app = KfpkitModelServer(host="127.0.0.1", http_port=0, enable_grpc=False, micro_batching=False).create_app([model])
    batches = _record_batches(model)
    path = "/v2/models/unbatched/infer"

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            return await asyncio.gather(
                *[client.post(path, json=_body(model, frame.iloc[i : i + 1])) for i in range(6)]
            )

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 6 and batches == []


def test_serve_cli_turns_micro_batching_on_by_default_and_off_with_false():
    from kfpkit.cli import serve as cli

    parser = cli.build_parser()
    assert parser.parse_args(["--model-dir", "d", "--model-name", "m"]).micro_batching is True
    assert (
        parser.parse_args(["--model-dir", "d", "--model-name", "m", "--micro-batching", "false"]).micro_batching
        is False
    )
