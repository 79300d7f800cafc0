"""A plain KServe custom Model serving kfpkit's TorchScript MLP: the peer of kfpkit's predictor for the real model.

What a KServe user writes for this model without kfpkit's predictor: a ``kserve.Model`` whose ``load()``
reads the model version directory with ``kfpkit.core.model_dir.load_model`` (TorchScript,
preprocessing spec, calibration: the model is those three together) and whose ``predict(InferRequest)``
takes each v2 input with ``as_numpy()`` (BYTES decoded as UTF-8), scores with
``LoadedModel.predict_proba_columns`` and returns one FP32 ``probability`` output; served by
``kserve.ModelServer().start([model])`` with KServe's defaults (logging, latency log, pydantic v2 route),
through :func:`benchmarks.serving.kserve_sklearn_server.main` (listening on ``--host``, 127.0.0.1, instead
of KServe's hard-coded 0.0.0.0).

Run: ``python -m benchmarks.serving.kserve_torch_server --model_dir DIR --model_name NAME --http_port PORT
--enable_grpc false``.
"""

from __future__ import annotations

from typing import Any, List, Optional

from benchmarks.serving import kserve_sklearn_server


def _model_class() -> Any:
    import numpy as np
    from kserve import Model
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    from kfpkit.core.model_dir import load_model

    class TorchModel(Model):
        def __init__(self, name: str, model_dir: str):
            super().__init__(name)
            self.model_dir = model_dir
            self.loaded: Any = None

        def load(self) -> bool:
            import torch

            self.loaded = load_model(self.model_dir)
            torch.set_num_threads(1)
            self.ready = True
            return True

        def predict(self, payload: InferRequest, headers: Optional[dict] = None) -> InferResponse:
            columns = {}
            for item in payload.inputs:
                values = item.as_numpy().reshape(-1)
                if item.datatype == "BYTES":
                    values = [v.decode() if isinstance(v, bytes) else v for v in values.tolist()]
                columns[item.name] = values
            probability = self.loaded.predict_proba_columns(columns).astype(np.float32)
            output = InferOutput(name="probability", shape=[len(probability)], datatype="FP32")
            output.set_data_from_numpy(probability, binary_data=False)
            return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[output])

    return TorchModel


def main(argv: Optional[List[str]] = None) -> int:
    return kserve_sklearn_server.main(argv, model_class=_model_class())


if __name__ == "__main__":
    raise SystemExit(main())
