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
``--model-version``, ``--cache-dir``, ``--payload-log``, ``--payload-log-sample-rate``,
``--payload-log-flush-seconds``.
Only one uvicorn worker per process is supported (``--workers 1``); scale with replicas.

On Vertex AI (``AIP_HTTP_PORT``, ``AIP_PREDICT_ROUTE``, ``AIP_HEALTH_ROUTE`` set) the server listens on
``AIP_HTTP_PORT`` (unless ``--http-port`` is given) and also answers Vertex's predict and health routes
(:mod:`kfpkit.serving.vertex_routes`); without these variables nothing changes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple

if TYPE_CHECKING:
    from kfpkit.serving.predictor import KfpkitModel

logger = logging.getLogger("kfpkit.serving")

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024  # = fast_path.DEFAULT_MAX_BODY_BYTES (kept import-light here)


def _strtobool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {value!r}")


@dataclass(frozen=True)
class _Flag:
    """One of kfpkit's own ``kfpkit serve`` flags.

    It is spelled ``--dashed-name`` and, unless ``underscore`` is false, also ``--underscore_name`` (the
    spelling of KServe's flags).
    """

    dest: str
    help: str
    type: Optional[Callable[[str], Any]] = None
    default: Any = None
    required: bool = False
    underscore: bool = True

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Adds the flag to ``parser``."""
        spellings = [f"--{self.dest.replace('_', '-')}"]
        if self.underscore and f"--{self.dest}" not in spellings:
            spellings.append(f"--{self.dest}")
        extra: Dict[str, Any] = {"required": True} if self.required else {"default": self.default}
        if self.type is not None:
            extra["type"] = self.type
        parser.add_argument(*spellings, dest=self.dest, help=self.help, **extra)


_MODEL_DIR = _Flag("model_dir", "model version directory or registry URI", required=True)

# KServe's flags that also take a dashed spelling: (flag, type, what the help adds to "alias of --<flag>").
# An alias has no default of its own: KServe's flag keeps its default.
KSERVE_DASHED_ALIASES: Tuple[Tuple[str, Optional[Callable[[str], Any]], str], ...] = (
    ("model_name", None, ""),
    ("http_port", int, ""),
    ("grpc_port", int, ": the OIP gRPC port (default 8081; --enable-grpc false turns gRPC off)"),
    ("enable_grpc", _strtobool, ""),
)

# kfpkit's own flags, in the order of the help. The payload log's rate and flush flags were added with the
# dashed spelling only; an underscore spelling would be a new flag.
_KFPKIT_FLAGS: Tuple[_Flag, ...] = (
    _Flag("host", "HTTP and gRPC listen address (127.0.0.1 for local-only use)", default="0.0.0.0"),
    _Flag(
        "expected_digest",
        "refuse the version unless its content digest (the registry's content_sha256) is this sha256",
    ),
    _Flag(
        "enable_model_repository",
        "serve the model repository extension (v2 load/unload, REST and gRPC); off: anyone could unload",
        type=_strtobool,
        default=False,
    ),
    _Flag(
        "access_log",
        "uvicorn's access log (predict/infer lines are dropped even when on)",
        type=_strtobool,
        default=False,
    ),
    _Flag(
        "max_body_bytes", "larger request bodies get a 413, on every route", type=int, default=DEFAULT_MAX_BODY_BYTES
    ),
    _Flag(
        "model_version",
        "version reported in v2 responses (default: the directory name when it is a registry version number)",
    ),
    _Flag("cache_dir", "where a remote --model-dir is copied"),
    _Flag(
        "fast_path",
        "serve predict/infer through kfpkit's fast path (false: KServe's standard handlers)",
        type=_strtobool,
        default=True,
    ),
    _Flag(
        "micro_batching",
        "score the fast path's concurrent requests together, one transform and model call per batch "
        "(false: each request alone)",
        type=_strtobool,
        default=True,
    ),
    _Flag(
        "inference_threads",
        "OpenMP/BLAS/torch threads of the serving thread (0: library defaults)",
        type=int,
        default=1,
    ),
    _Flag(
        "payload_log",
        "log every scored instance as Parquet payload records under this folder, gs:// or s3:// URI",
    ),
    _Flag(
        "payload_log_sample_rate",
        "fraction of requests the payload log keeps",
        type=float,
        default=1.0,
        underscore=False,
    ),
    _Flag(
        "payload_log_flush_seconds",
        "longest time a payload record waits in memory before it is written",
        type=float,
        default=10.0,
        underscore=False,
    ),
)


def _add_kserve_aliases(parser: argparse.ArgumentParser) -> None:
    """Adds the ``--dashed-name`` alias of every flag in :data:`KSERVE_DASHED_ALIASES`."""
    for dest, alias_type, more_help in KSERVE_DASHED_ALIASES:
        typed: Dict[str, Any] = {} if alias_type is None else {"type": alias_type}
        parser.add_argument(
            f"--{dest.replace('_', '-')}",
            dest=dest,
            default=argparse.SUPPRESS,
            help=f"alias of --{dest}{more_help}",
            **typed,
        )


def build_parser() -> argparse.ArgumentParser:
    """The ``kfpkit serve`` parser: KServe's ModelServer parser plus kfpkit's flags."""
    from kserve.model_server import parser as kserve_parser

    parser = argparse.ArgumentParser(
        prog="kfpkit serve",
        parents=[kserve_parser],
        description="Serve a kfpkit model version directory with the KServe ModelServer (v1, v2, /metrics).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _MODEL_DIR.add_to(parser)
    _add_kserve_aliases(parser)
    for flag in _KFPKIT_FLAGS:
        flag.add_to(parser)
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
    """The ``model_version`` label of a registry version URI (:func:`kfpkit.core.registry.parse_version_uri`)."""
    from kfpkit.core.registry import RegistryError, parse_version_uri

    try:
        return str(parse_version_uri(uri).version)
    except RegistryError:
        return None


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


# What main hands to KfpkitModelServer as parsed: kfpkit's server flags, then KServe's ModelServer flags.
SERVER_SETTINGS: Tuple[str, ...] = (
    "host",
    "fast_path",
    "micro_batching",
    "max_body_bytes",
    "enable_model_repository",
    "access_log",
    "http_port",
    "grpc_port",
    "workers",
    "max_threads",
    "max_asyncio_workers",
    "enable_grpc",
    "enable_docs_url",
    "enable_latency_logging",
    "access_log_format",
    "event_loop",
    "timeout_keep_alive",
    "ssl_certfile",
    "ssl_keyfile",
)


def _configure_logging(args: argparse.Namespace) -> None:
    """KServe's logging when ``--configure_logging``; kfpkit's INFO lines in KServe's format either way."""
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


def _load_model(args: argparse.Namespace) -> Optional[KfpkitModel]:
    """Fetches, verifies and loads the model version, with its payload logger when ``--payload-log`` is set.

    Returns:
        The loaded :class:`~kfpkit.serving.predictor.KfpkitModel`, or ``None`` when it was refused (logged).
    """
    from kfpkit.serving.predictor import KfpkitModel

    try:
        local_dir = resolve_model_dir(args.model_dir, args.cache_dir)
    except Exception as exc:
        logger.error(
            "model %s refused: cannot fetch %s: %s: %s", args.model_name, args.model_dir, type(exc).__name__, exc
        )
        return None
    model = KfpkitModel(
        args.model_name,
        local_dir,
        model_version=args.model_version or default_model_version(args.model_dir),
        inference_threads=args.inference_threads or None,
        expected_digest=args.expected_digest,
    )
    if not model.load():
        return None
    assert model.loaded is not None  # load() returned True
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
    return model


def apply_vertex_settings(
    args: argparse.Namespace, argv: Optional[List[str]], environ: Mapping[str, str]
) -> Optional[Tuple[str, str, str]]:
    """Honours Vertex AI's ``AIP_*`` variables when set (:mod:`kfpkit.serving.vertex_routes`); nothing otherwise.

    ``AIP_HTTP_PORT`` becomes the HTTP port unless ``--http-port`` was given. Returns the
    ``(model name, predict route, health route)`` the server maps, or ``None`` when no route is set.
    """
    from kfpkit.serving.vertex_routes import vertex_settings

    vertex = vertex_settings(environ)
    if vertex is None:
        return None
    given = set(argv if argv is not None else sys.argv[1:])
    if vertex.http_port is not None and not given & {"--http-port", "--http_port"}:
        args.http_port = vertex.http_port
    if not (vertex.predict_route or vertex.health_route):
        return None
    return (args.model_name, vertex.predict_route, vertex.health_route)


def main(argv: Optional[List[str]] = None) -> int:
    """Runs ``kfpkit serve``; returns 1 when the model is refused, else serves until stopped (then 0)."""
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    vertex_routes = apply_vertex_settings(args, argv, os.environ)

    from kfpkit.serving.server import KfpkitModelServer

    model = _load_model(args)
    if model is None:
        return 1
    server = KfpkitModelServer(**{name: getattr(args, name) for name in SERVER_SETTINGS}, vertex_routes=vertex_routes)
    try:
        server.start([model])  # returns after KServe's graceful shutdown (SIGTERM/SIGINT)
    finally:
        if model.payload_logger is not None:
            model.payload_logger.close()  # flush what is queued
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
