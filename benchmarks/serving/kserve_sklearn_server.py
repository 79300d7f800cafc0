"""KServe custom Model (sklearnserver-equivalent): KServe's sklearnserver, rebuilt on the installed kserve.

KServe's ``sklearnserver`` (``python/sklearnserver`` in the kserve repository) is shipped only as a
container image; it is not published on PyPI. This module reproduces what its ``model.py`` and
``__main__.py`` do, on the kserve 0.21 of the main environment:

* ``SKLearnModel(kserve.Model)``: ``load()`` finds the single ``*.joblib``/``*.pkl``/``*.pickle`` file in
  ``model_dir`` and ``joblib.load``-s it; ``predict(payload)`` calls
  ``kserve.utils.utils.get_predict_input(payload)`` (the v2 tensor as a numpy array, or v1 ``instances``),
  then ``predict_proba`` when the ``PREDICT_PROBA`` environment variable is ``true`` (else ``predict``),
  and returns ``get_predict_response(payload, result, name)``;
* ``kserve.ModelServer().start([model])`` with KServe's own argument parser and defaults (logging
  configured, latency logging on, one worker).

The one change: KServe's ``RESTServer`` hard-codes the listen address ``0.0.0.0``; here it listens on
``--host`` (default 127.0.0.1), so a benchmark never exposes a port beyond the loopback interface.

Run: ``PREDICT_PROBA=true python -m benchmarks.serving.kserve_sklearn_server --model_dir DIR
--model_name NAME --http_port PORT --enable_grpc false``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List, Optional

MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")
ENV_PREDICT_PROBA = "PREDICT_PROBA"


def _model_class() -> Any:
    from kserve import Model

    class SKLearnModel(Model):
        """KServe sklearnserver's model: a joblib sklearn estimator behind ``kserve.Model``."""

        def __init__(self, name: str, model_dir: str):
            super().__init__(name)
            self.name = name
            self.model_dir = model_dir
            self.ready = False
            self._model: Any = None

        def load(self) -> bool:
            import joblib
            from kserve.errors import ModelMissingError

            model_files = [
                os.path.join(self.model_dir, f)
                for f in sorted(os.listdir(self.model_dir))
                if os.path.isfile(os.path.join(self.model_dir, f)) and f.endswith(MODEL_EXTENSIONS)
            ]
            if not model_files:
                raise ModelMissingError(self.model_dir)
            if len(model_files) > 1:
                raise RuntimeError(
                    f"More than one model file is detected, Only one is allowed within model_dir: {model_files}"
                )
            self._model = joblib.load(model_files[0])
            self.ready = True
            return self.ready

        def predict(self, payload: Any, headers: Optional[Dict[str, str]] = None) -> Any:
            from kserve.errors import InferenceError
            from kserve.utils.utils import get_predict_input, get_predict_response

            try:
                instances = get_predict_input(payload)
                if os.environ.get(ENV_PREDICT_PROBA, "false").lower() == "true" and hasattr(
                    self._model, "predict_proba"
                ):
                    result = self._model.predict_proba(instances)
                else:
                    result = self._model.predict(instances)
                return get_predict_response(payload, result, self.name)
            except Exception as e:
                raise InferenceError(str(e)) from e

    return SKLearnModel


def make_model(name: str, model_dir: str) -> Any:
    """A loaded sklearnserver-equivalent ``kserve.Model`` (for in-process checks)."""
    model = _model_class()(name, model_dir)
    model.load()
    return model


def _use_host(host: str) -> None:
    """Makes ``kserve.ModelServer`` listen on ``host`` instead of its hard-coded 0.0.0.0."""
    from kserve import model_server
    from kserve.protocol.rest.server import RESTServer

    class _HostRESTServer(RESTServer):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.config.host = host

    model_server.RESTServer = _HostRESTServer


def main(argv: Optional[List[str]] = None, model_class: Optional[Any] = None) -> int:
    """KServe's ``__main__``: parse KServe's flags, load ``model_class(name, model_dir)``, ``ModelServer().start``."""
    from kserve import ModelServer, model_server
    from kserve import logging as kserve_logging

    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True, help="A local path to the model binary")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP listen address")
    args, _ = parser.parse_known_args(argv)
    if args.configure_logging:
        kserve_logging.configure_logging(args.log_config_file)
    _use_host(args.host)
    model = (model_class or _model_class())(args.model_name, args.model_dir)
    model.load()
    ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        max_threads=args.max_threads,
        max_asyncio_workers=args.max_asyncio_workers,
        enable_grpc=args.enable_grpc,
        enable_latency_logging=args.enable_latency_logging,
    ).start([model])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
