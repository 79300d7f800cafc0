"""``kfpkit serve``: serve a model version directory with the KServe ModelServer.

    kfpkit serve --model-dir URI --model-name NAME [--http-port N] [--host ADDR] [KServe ModelServer flags]

``--model-dir`` is a local model version directory or a registry URI (``gs://``, ``s3://``, ...), which
is first copied to ``--cache-dir`` (a temporary folder by default) with
``kfpkit.core.registry.materialize``. The sha256 manifest is verified before anything is
loaded; a tampered or incomplete version is refused and the command exits with status 1.

Every flag of ``kserve.model_server.parser`` is accepted as well (``--http_port``, ``--grpc_port``,
``--enable_grpc``, ``--max_asyncio_workers``, ``--configure_logging``, ...); the dashed spellings
``--model-name``, ``--http-port``, ``--grpc-port`` and ``--enable-grpc`` are aliases of KServe's flags.
kfpkit's own: ``--host`` (HTTP and gRPC), ``--expected-digest``, ``--enable-model-repository``,
``--max-body-bytes``, ``--access-log``, ``--fast-path``, ``--micro-batching``, ``--inference-threads``,
``--model-version``, ``--cache-dir``.
Only one uvicorn worker per process is supported (``--workers 1``); scale with replicas.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import tempfile
from typing import List, Optional

logger = logging.getLogger("kfpkit.serving")

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024  # = fast_path.DEFAULT_MAX_BODY_BYTES (kept import-light here)


def _strtobool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {value!r}")


def build_parser() -> argparse.ArgumentParser:
    """The ``kfpkit serve`` parser: KServe's ModelServer parser plus kfpkit's flags."""
    from kserve.model_server import parser as kserve_parser

    parser = argparse.ArgumentParser(
        prog="kfpkit serve",
        parents=[kserve_parser],
        description="Serve a kfpkit model version directory with the KServe ModelServer (v1, v2, /metrics).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model-dir", "--model_dir", dest="model_dir", required=True, help="model version directory or registry URI"
    )
    parser.add_argument("--model-name", dest="model_name", default=argparse.SUPPRESS, help="alias of --model_name")
    parser.add_argument(
        "--http-port", dest="http_port", type=int, default=argparse.SUPPRESS, help="alias of --http_port"
    )
    parser.add_argument(
        "--grpc-port",
        dest="grpc_port",
        type=int,
        default=argparse.SUPPRESS,
        help="alias of --grpc_port: the OIP gRPC port (default 8081; --enable-grpc false turns gRPC off)",
    )
    parser.add_argument(
        "--enable-grpc", dest="enable_grpc", type=_strtobool, default=argparse.SUPPRESS, help="alias of --enable_grpc"
    )
    parser.add_argument("--host", default="0.0.0.0", help="HTTP and gRPC listen address (127.0.0.1 for local-only use)")
    parser.add_argument(
        "--expected-digest",
        "--expected_digest",
        dest="expected_digest",
        default=None,
        help="refuse the version unless its content digest (the registry's content_sha256) is this sha256",
    )
    parser.add_argument(
        "--enable-model-repository",
        "--enable_model_repository",
        dest="enable_model_repository",
        type=_strtobool,
        default=False,
        help="serve the model repository extension (v2 load/unload, REST and gRPC); off: anyone could unload",
    )
    parser.add_argument(
        "--access-log",
        "--access_log",
        dest="access_log",
        type=_strtobool,
        default=False,
        help="uvicorn's access log (predict/infer lines are dropped even when on)",
    )
    parser.add_argument(
        "--max-body-bytes",
        "--max_body_bytes",
        dest="max_body_bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="larger request bodies get a 413, on every route",
    )
    parser.add_argument(
        "--model-version",
        "--model_version",
        dest="model_version",
        default=None,
        help="version reported in v2 responses (default: the directory name when it is a registry version number)",
    )
    parser.add_argument(
        "--cache-dir", "--cache_dir", dest="cache_dir", default=None, help="where a remote --model-dir is copied"
    )
    parser.add_argument(
        "--fast-path",
        "--fast_path",
        dest="fast_path",
        type=_strtobool,
        default=True,
        help="serve predict/infer through kfpkit's fast path (false: KServe's standard handlers)",
    )
    parser.add_argument(
        "--micro-batching",
        "--micro_batching",
        dest="micro_batching",
        type=_strtobool,
        default=True,
        help="score the fast path's concurrent requests together, one transform and model call per batch "
        "(false: each request alone)",
    )
    parser.add_argument(
        "--inference-threads",
        "--inference_threads",
        dest="inference_threads",
        type=int,
        default=1,
        help="OpenMP/BLAS/torch threads of the serving thread (0: library defaults)",
    )
    parser.add_argument(
        "--payload-log",
        "--payload_log",
        dest="payload_log",
        default=None,
        help="log every scored instance as Parquet payload records under this folder, gs:// or s3:// URI",
    )
    parser.add_argument(
        "--payload-log-sample-rate",
        dest="payload_log_sample_rate",
        type=float,
        default=1.0,
        help="fraction of requests the payload log keeps",
    )
    parser.add_argument(
        "--payload-log-flush-seconds",
        dest="payload_log_flush_seconds",
        type=float,
        default=10.0,
        help="longest time a payload record waits in memory before it is written",
    )
    return parser


def resolve_model_dir(uri: str, cache_dir: Optional[str] = None) -> str:
    """A local directory for ``uri``: a plain path itself, else ``registry.materialize`` into a new folder.

    Raises:
        kfpkit.core.registry.RegistryError: the version does not exist or is incomplete.
    """
    if "://" not in uri:
        return uri
    from kfpkit.core.registry import materialize

    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
    target = os.path.join(tempfile.mkdtemp(prefix="kfpkit-serve-", dir=cache_dir), "model")
    return materialize(uri, target)


def default_model_version(uri: str) -> Optional[str]:
    """The registry version number when ``uri`` ends in ``/<model>/<integer>``."""
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    return last if re.fullmatch(r"\d+", last) else None


def _serve_help() -> str:
    return build_parser().format_help()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Hands every flag to :func:`build_parser`'s parser: ``kfpkit serve --help`` prints its help."""
    parser.format_help = _serve_help  # type: ignore[method-assign]
    parser.allow_abbrev = False  # every flag goes to the serve parser as typed
    parser.set_defaults(extra_argv=[])


def run(args: argparse.Namespace) -> int:
    """Runs ``kfpkit serve`` with the flags that :func:`add_arguments` forwarded."""
    return main(args.extra_argv) or 0


def main(argv: Optional[List[str]] = None) -> int:
    """Runs ``kfpkit serve``; returns 1 when the model is refused, else serves until stopped (then 0)."""
    args = build_parser().parse_args(argv)
    from kserve import logging as kserve_logging

    if args.configure_logging:
        kserve_logging.configure_logging(args.log_config_file)
    kfpkit_logger = logging.getLogger("kfpkit")
    kfpkit_logger.setLevel(logging.INFO)
    if not kfpkit_logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter(kserve_logging.KSERVE_LOGGER_FORMAT, kserve_logging.KSERVE_LOGGER_DATE_FORMAT)
        )
        kfpkit_logger.addHandler(handler)

    from kfpkit.serving.predictor import KfpkitModel
    from kfpkit.serving.server import KfpkitModelServer

    try:
        local_dir = resolve_model_dir(args.model_dir, args.cache_dir)
    except Exception as exc:
        logger.error(
            "model %s refused: cannot fetch %s: %s: %s", args.model_name, args.model_dir, type(exc).__name__, exc
        )
        return 1
    model = KfpkitModel(
        args.model_name,
        local_dir,
        model_version=args.model_version or default_model_version(args.model_dir),
        inference_threads=args.inference_threads or None,
        expected_digest=args.expected_digest,
    )
    if not model.load():
        return 1
    if args.payload_log:
        from kfpkit.serving.payload_log import PayloadLogger

        model.payload_logger = PayloadLogger(
            args.payload_log,
            args.model_name,
            model.model_version,
            model.loaded.spec,
            sample_rate=args.payload_log_sample_rate,
            flush_seconds=args.payload_log_flush_seconds,
        )
    server = KfpkitModelServer(
        host=args.host,
        fast_path=args.fast_path,
        micro_batching=args.micro_batching,
        max_body_bytes=args.max_body_bytes,
        enable_model_repository=args.enable_model_repository,
        access_log=args.access_log,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        max_threads=args.max_threads,
        max_asyncio_workers=args.max_asyncio_workers,
        enable_grpc=args.enable_grpc,
        enable_docs_url=args.enable_docs_url,
        enable_latency_logging=args.enable_latency_logging,
        access_log_format=args.access_log_format,
        event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
    )
    try:
        server.start([model])  # returns after KServe's graceful shutdown (SIGTERM/SIGINT)
    finally:
        if model.payload_logger is not None:
            model.payload_logger.close()  # flush what is queued
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
