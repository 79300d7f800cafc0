"""The "limit" row of ``make bench-serving``: the least a Python server can do for the same request.

    python -m benchmarks.serving.limit_server --joblib PATH --model-name NAME --port N

A bare ASGI app under uvicorn (uvloop, httptools, no access log, no middleware, no validation): it reads
the body, parses it with orjson, takes the ``features`` tensor of the v2 request, and scores it with one
numpy dot product on the benchmark LogisticRegression's weights folded with its scaler
(``sigmoid(x @ (coef / scale) + intercept - (mean / scale) @ coef)``) -- the same model the other rows
serve. It answers ``/v2/models/{name}/ready`` and ``/infer`` with a kfpkit-shaped ``probability`` output,
and 400 for anything it cannot read. Loopback only (127.0.0.1).
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import orjson

HOST = "127.0.0.1"


def folded_weights(joblib_path: str) -> tuple:
    """``(w, b)`` of the benchmark ``Pipeline(StandardScaler, LogisticRegression)`` as one linear map."""
    import joblib

    pipeline = joblib.load(joblib_path)
    scaler = pipeline.named_steps["scale"]
    classifier = pipeline.named_steps["classifier"]
    coef = classifier.coef_.reshape(-1).astype(np.float64)
    w = coef / scaler.scale_
    b = float(classifier.intercept_[0] - np.dot(scaler.mean_ / scaler.scale_, coef))
    return w, b


def make_app(w: np.ndarray, b: float, model_name: str) -> Any:
    """The ASGI app (see the module docstring)."""
    infer_path = f"/v2/models/{model_name}/infer"
    ready_path = f"/v2/models/{model_name}/ready"
    k = len(w)
    json_headers = [(b"content-type", b"application/json")]

    async def respond(send: Any, status: int, payload: bytes) -> None:
        headers = [*json_headers, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def app(scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        if path == ready_path:
            await respond(send, 200, b'{"name":"%s","ready":true}' % model_name.encode())
            return
        if path != infer_path or scope["method"] != "POST":
            await respond(send, 404, b'{"error":"not found"}')
            return
        chunks: List[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            tensor = orjson.loads(b"".join(chunks))["inputs"][0]
            x = np.asarray(tensor["data"], dtype=np.float64).reshape(-1, k)
        except Exception as exc:  # the limit row validates nothing else
            await respond(send, 400, orjson.dumps({"error": str(exc)}))
            return
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        out = {"model_name": model_name, "outputs": [{"name": "probability", "datatype": "FP32", "shape": [len(p)],
                                                      "data": p.astype(np.float32)}]}  # fmt: skip
        await respond(send, 200, orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY))

    return app


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving.limit_server")
    parser.add_argument("--joblib", required=True, help="the benchmark's model.joblib")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvicorn

    w, b = folded_weights(args.joblib)
    uvicorn.run(
        make_app(w, b, args.model_name),
        host=HOST,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
