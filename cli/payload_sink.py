"""``kfpkit payload-sink``: the CloudEvents receiver of KServe's inference logger (see :mod:`.payload_sink`).

    kfpkit payload-sink --model NAME=MODEL_DIR [--model ...] --spool DIR --out URI
                        [--host 0.0.0.0] [--port 8080] [--segment-events 5000] [--compact-seconds 30]
                        [--orphan-wait-s 2] [--pending-ttl-s 600] [--max-body-bytes 33554432] [--fsync]

``NAME`` is the InferenceService name (the ``ce-inferenceservicename`` of its events); ``MODEL_DIR`` the model
version it serves (a local folder or a registry URI; only ``preprocessing.json`` is read, to decode the
bodies). Serves until SIGTERM/SIGINT, then compacts what is joined and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from typing import Dict, List

from kfpkit.cli.serve import DEFAULT_MAX_BODY_BYTES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``kfpkit payload-sink`` options to ``parser``."""
    parser.add_argument(
        "--model", action="append", required=True, metavar="NAME=MODEL_DIR", help="served model (repeatable)"
    )
    parser.add_argument("--spool", required=True, help="local spool folder (a PersistentVolume in the cluster)")
    parser.add_argument("--out", required=True, help="payload-log root for the records (folder, gs://, s3://)")
    parser.add_argument("--host", default="0.0.0.0", help="listen address")
    parser.add_argument("--port", type=int, default=8080, help="listen port")
    parser.add_argument("--segment-events", type=int, default=5000, help="events per spool segment")
    parser.add_argument("--compact-seconds", type=float, default=30.0, help="longest age of the active segment")
    parser.add_argument("--orphan-wait-s", type=float, default=2.0, help="how long a response waits for its request")
    parser.add_argument("--pending-ttl-s", type=float, default=600.0, help="how long a request waits for its response")
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="larger event bodies get a 413 (default: the predictor's limit, %(default)s)",
    )
    parser.add_argument("--fsync", action="store_true", help="fsync the spool after every event")


def parse_models(values: List[str]) -> Dict[str, str]:
    """``{name: model dir}`` of the ``--model NAME=MODEL_DIR`` values; a repeated name keeps its last value.

    Raises:
        ValueError: a value lacks the ``=``, the name or the model dir.
    """
    out: Dict[str, str] = {}
    for value in values:
        name, sep, uri = value.partition("=")
        if not sep or not name or not uri:
            raise ValueError(f"--model {value!r}: expected NAME=MODEL_DIR")
        out[name] = uri
    return out


def run(args: argparse.Namespace) -> int:
    """Serves the payload sink until SIGTERM/SIGINT.

    Returns:
        0 after a clean shutdown, or 2 when a model dir cannot be read or an option is invalid (the error goes
        to stderr, nothing is served).
    """
    import uvicorn

    from kfpkit.cli.serve import default_model_version, resolve_model_dir
    from kfpkit.serving.payload_sink import ModelTarget, PayloadSink, PayloadSinkApp

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        models = {}
        for name, uri in parse_models(args.model).items():
            local = resolve_model_dir(uri, tempfile.mkdtemp(prefix="kfpkit-sink-"))
            models[name] = ModelTarget.from_model_dir(name, local, default_model_version(uri))
        sink = PayloadSink(
            models,
            args.spool,
            args.out,
            segment_events=args.segment_events,
            compact_seconds=args.compact_seconds,
            orphan_wait_s=args.orphan_wait_s,
            pending_ttl_s=args.pending_ttl_s,
            fsync=args.fsync,
        )
        app = PayloadSinkApp(sink, max_body_bytes=args.max_body_bytes)
    except (OSError, ValueError) as exc:
        print(f"kfpkit payload-sink: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    return 0
