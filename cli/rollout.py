"""``kfpkit rollout``: canary analysis from Prometheus metrics, then promote or roll back.

    kfpkit rollout --backend local --stable URI --canary URI [--steps 10,25,50,100] [--interval 10s]
                   [--replay SOURCE --rps N] --summary-json PATH
    kfpkit rollout --backend kserve --name ISVC --namespace NS --prometheus-url URL --summary-json PATH
    kfpkit rollout --backend vertex --project P --location L --endpoint ID --summary-json PATH

``--backend local`` starts two ``kfpkit serve`` processes (or uses ``--stable-url``/``--canary-url``),
Prometheus (or uses ``--prometheus-url``) and nginx on loopback ports, prints the URL to send traffic to,
optionally replays a table of feature rows against it, analyses, decides, writes the rollout record and
stops everything it started. nginx's folder (``--work-dir``) keeps the split: a rollout restarted with
the same folder adopts the running nginx and continues at its step. ``--backend kserve`` drives an
InferenceService (Serverless or Standard mode, read from the ISVC) through the Kubernetes API.
``--backend vertex`` drives a Vertex AI Endpoint's ``traffic_split`` and measures each deployed model in
Cloud Monitoring and its payload log (:mod:`kfpkit.components.rollout.vertex`); credentials are Application
Default Credentials.

Exit status: 0 promoted, 3 rolled back, 2 bad arguments, 1 an error (nothing decided).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
import sys
import tempfile
from typing import Any, Dict, List, Tuple

EXIT_PROMOTED, EXIT_ERROR, EXIT_USAGE, EXIT_ROLLED_BACK = 0, 1, 2, 3


def parse_duration(text: str) -> float:
    """Seconds of ``10s``, ``500ms``, ``2m`` or a plain number of seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 10s, 500ms, 2m)")
    value = float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    return value


def parse_steps(text: str) -> List[int]:
    """Canary weights from ``10,25,50,100``."""
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"steps must be comma-separated integers, got {text!r}") from exc


def parse_query(text: str) -> Tuple[str, str]:
    """``(name, template)`` from ``NAME=PROMQL_TEMPLATE``."""
    name, sep, template = text.partition("=")
    if not sep or not template:
        raise argparse.ArgumentTypeError(f"expected NAME=PROMQL_TEMPLATE, got {text!r}")
    return name.strip(), template


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds every ``kfpkit rollout`` option to ``parser``; the analysis options come from its config classes."""
    from kfpkit.components.rollout.analysis import RolloutConfig, Thresholds

    _add_backend_arguments(parser.add_argument_group("backend"))
    analysis = parser.add_argument_group("analysis")
    add_config_arguments(analysis, RolloutConfig)
    add_config_arguments(analysis, Thresholds)
    _add_traffic_arguments(parser.add_argument_group("metrics and traffic"))
    o = parser.add_argument_group("output")
    o.add_argument(
        "--summary-json", default="", help="write the rollout record (JSON) here; rewritten after every step"
    )
    o.add_argument("--record-md", default="", help="write the rollout record as Markdown here, once decided")
    o.add_argument(
        "--model-uri",
        default="",
        help="the canary's registry version URI (<root>/<model>/<N>): a rollback is recorded in that registry and "
        "its LATEST_BLESSED moves back to the version still serving",
    )


def _add_backend_arguments(g: Any) -> None:
    g.add_argument(
        "--backend", choices=["local", "kserve", "vertex"], default="local", help="traffic backend (default local)"
    )
    g.add_argument("--stable", default="", help="local: model directory or registry URI of the stable version")
    g.add_argument("--canary", default="", help="local: model directory or registry URI of the canary version")
    g.add_argument("--stable-url", default="", help="local: host:port of an already running stable predictor")
    g.add_argument("--canary-url", default="", help="local: host:port of an already running canary predictor")
    g.add_argument(
        "--stable-version", default="", help="model_version label of the stable version (default: from --stable)"
    )
    g.add_argument(
        "--canary-version", default="", help="model_version label of the canary version (default: from --canary)"
    )
    g.add_argument("--model-name", default="kfpkit", help="local: served model name, the isvc label (default kfpkit)")
    g.add_argument(
        "--work-dir", default="", help="local: nginx folder; reuse it to resume a killed rollout (default: temporary)"
    )
    g.add_argument("--name", default="", help="kserve: InferenceService name")
    g.add_argument("--namespace", default="", help="kserve: namespace of the InferenceService")
    g.add_argument(
        "--kubeconfig", default="", help="kserve: kubeconfig file (default: in-cluster, then ~/.kube/config)"
    )
    g.add_argument("--api-server", default="", help="kserve: Kubernetes API URL (overrides --kubeconfig)")
    g.add_argument("--token-file", default="", help="kserve: file with a bearer token for --api-server")
    g.add_argument(
        "--timeout",
        type=parse_duration,
        default=600.0,
        help="kserve: readiness timeout per change; vertex: per long-running operation (default 600s)",
    )
    _add_vertex_arguments(g)


def _add_vertex_arguments(g: Any) -> None:
    g.add_argument("--project", default="", help="vertex: Google Cloud project of the Endpoint")
    g.add_argument("--location", default="us-central1", help="vertex: region of the Endpoint (default us-central1)")
    g.add_argument("--endpoint", default="", help="vertex: Endpoint ID")
    g.add_argument(
        "--vertex-api-endpoint",
        default="",
        help="vertex: Vertex AI API base URL (default https://LOCATION-aiplatform.googleapis.com)",
    )
    g.add_argument(
        "--monitoring-api-endpoint",
        default="",
        help="vertex: Cloud Monitoring host:port (default monitoring.googleapis.com)",
    )
    g.add_argument(
        "--payload-log",
        default="",
        help="vertex: payload-log root of both versions (default: each version's --payload-log)",
    )
    g.add_argument(
        "--metrics-delay",
        type=parse_duration,
        default=0.0,
        help="vertex: shift each measured window back by this much (Cloud Monitoring's visibility delay; default 0s)",
    )


def _add_traffic_arguments(m: Any) -> None:
    m.add_argument(
        "--prometheus-url", default="", help="Prometheus to query (local default: start one on a loopback port)"
    )
    m.add_argument(
        "--scrape-interval",
        type=parse_duration,
        default=1.0,
        help="local: scrape interval of the started Prometheus (default 1s)",
    )
    m.add_argument(
        "--replay", default="", help="local: CSV/Parquet/JSON Lines table of feature rows to send as traffic"
    )
    m.add_argument("--label-column", default="", help="column of --replay to drop before sending")
    m.add_argument("--rps", type=float, default=20.0, help="requests per second of --replay (default 20)")
    m.add_argument("--batch-size", type=int, default=1, help="rows per replayed request (default 1)")


def add_config_arguments(group: Any, config_class: type) -> None:
    """One option per field of the dataclass ``config_class`` that carries an ``analysis.Flag``.

    The option's destination is the field's name and its default the field's default, so that
    :func:`config_from_arguments` rebuilds the dataclass from the parsed arguments.
    """
    for spec in dataclasses.fields(config_class):
        flag = spec.metadata.get("flag")
        if flag is None:
            continue
        default: Any = spec.default
        options: Dict[str, Any] = {"type": type(default), "default": default}
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        if flag.value == "duration":
            options["type"], shown = parse_duration, f"{default:g}s"
        elif flag.value == "steps":
            options.update(type=parse_steps, default=list(default))
            shown = ",".join(str(s) for s in default)
        elif flag.value == "choice":
            options.update(choices=list(flag.choices))
        elif flag.value == "query":
            options.update(type=parse_query, action="append", default=[], metavar="NAME=TEMPLATE")
            shown = "none"
        if flag.value != "choice":
            options.setdefault("metavar", flag.name.lstrip("-").upper().replace("-", "_"))
        group.add_argument(flag.name, dest=spec.name, help=f"{flag.help} (default {shown})", **options)


def config_from_arguments(args: argparse.Namespace, config_class: type, **fields: Any) -> Any:
    """``config_class`` from the options :func:`add_config_arguments` added, plus ``fields``."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if "flag" in f.metadata}
    return config_class(**values, **fields)


def _version_of(uri: str, fallback: str) -> str:
    """The ``model_version`` label of a registry version URI (``parse_version_uri``), else ``fallback``."""
    from kfpkit.core.registry import RegistryError, parse_version_uri

    try:
        return str(parse_version_uri(uri).version)
    except RegistryError:
        return fallback


def _config(args: argparse.Namespace) -> Any:
    from kfpkit.components.rollout.analysis import RolloutConfig, Thresholds

    thresholds = config_from_arguments(args, Thresholds)
    return config_from_arguments(args, RolloutConfig, thresholds=thresholds)


def _write(args: argparse.Namespace, record: Any) -> None:
    from kfpkit.core.rollout_record import write_rollout_record

    write_rollout_record(record, args.summary_json, args.record_md)


def run(args: argparse.Namespace) -> int:
    """Runs ``kfpkit rollout``; returns the exit status (see the module docstring)."""
    from kfpkit.components.rollout.analysis import RolloutError
    from kfpkit.components.rollout.logic import record_rollback_in_registry
    from kfpkit.core.rollout_record import PROMOTE, ROLLBACK

    try:
        config = _config(args)
    except (RolloutError, ValueError) as exc:
        print(f"kfpkit rollout: {exc}", file=sys.stderr)
        return EXIT_USAGE
    previous = signal.signal(signal.SIGTERM, _raise_exit)
    try:
        runner = {"local": _run_local, "kserve": _run_kserve, "vertex": _run_vertex}[args.backend]
        record = runner(args, config)
        if args.model_uri and record.decision == ROLLBACK:
            record_rollback_in_registry(args.model_uri, record)
    except _UsageError as exc:
        print(f"kfpkit rollout: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        print(f"kfpkit rollout: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"decision: {record.decision} ({record.reason}) after {record.intervals_to_decision} intervals")
    return EXIT_PROMOTED if record.decision == PROMOTE else EXIT_ROLLED_BACK


class _UsageError(ValueError):
    pass


def _raise_exit(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _log(message: str) -> None:
    print(message, flush=True)


def _run_local(args: argparse.Namespace, config: Any) -> Any:
    from kfpkit.components.rollout.analysis import PrometheusSource, run_rollout
    from kfpkit.components.rollout.prometheus import PrometheusClient
    from kfpkit.onebox import replay
    from kfpkit.onebox import stack as local

    if not (args.stable or args.stable_url) or not (args.canary or args.canary_url):
        raise _UsageError("--backend local needs --stable (or --stable-url) and --canary (or --canary-url)")
    stable_version = args.stable_version or _version_of(args.stable, "stable")
    canary_version = args.canary_version or _version_of(args.canary, "canary")
    if stable_version == canary_version:
        stable_version, canary_version = f"stable-{stable_version}", f"canary-{canary_version}"
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="kfpkit-rollout-")
    os.makedirs(work_dir, exist_ok=True)
    started: List[Any] = []
    try:
        addresses = {}
        for role, uri, url in (("stable", args.stable, args.stable_url), ("canary", args.canary, args.canary_url)):
            if url:
                addresses[role] = url.replace("http://", "").rstrip("/")
                continue
            predictor = local.Predictor(uri, args.model_name, log_path=os.path.join(work_dir, f"{role}.log")).start()
            started.append(predictor)
            addresses[role] = predictor.address
        for predictor in started:
            predictor.wait_ready()
        prometheus_url = args.prometheus_url
        if not prometheus_url:
            labels = {"namespace": local.LOCAL_NAMESPACE, "isvc": args.model_name}
            targets = [
                {"address": addresses["stable"], "labels": dict(labels, model_version=stable_version)},
                {"address": addresses["canary"], "labels": dict(labels, model_version=canary_version)},
            ]
            server = local.PrometheusServer(os.path.join(work_dir, "prometheus"), targets, args.scrape_interval).start()
            started.append(server)
            prometheus_url = server.url
        nginx = local.Nginx(os.path.join(work_dir, "nginx"), addresses["stable"], addresses["canary"])
        started.append(nginx)
        if not nginx.running():
            nginx.apply(0)
        print(f"send traffic to {nginx.url}/v1/models/{args.model_name}:predict", flush=True)
        backend = local.LocalBackend(nginx, args.model_name, stable_version, canary_version)
        if args.replay:
            rows = replay.read_rows(args.replay, args.label_column)
            budget = config.interval_s * (len(config.steps) + config.max_inconclusive + 1) + 60
            load = replay.Replay(nginx.url, args.model_name, replay.batches_of(rows, args.batch_size), args.rps, budget)
            started.append(load.start())
        source = PrometheusSource(PrometheusClient(prometheus_url), config.templates())
        return run_rollout(backend, source, config, on_step=lambda r: _write(args, r), log=_log)
    finally:
        for item in reversed(started):
            item.stop()


def _run_kserve(args: argparse.Namespace, config: Any) -> Any:
    from kfpkit.components.rollout.analysis import PrometheusSource, run_rollout
    from kfpkit.components.rollout.kserve import kserve_backend
    from kfpkit.components.rollout.prometheus import PrometheusClient

    if not args.name or not args.namespace or not args.prometheus_url:
        raise _UsageError("--backend kserve needs --name, --namespace and --prometheus-url")
    token = open(args.token_file, encoding="utf-8").read().strip() if args.token_file else ""
    backend = kserve_backend(
        args.name, args.namespace, host=args.api_server, token=token, kubeconfig=args.kubeconfig, timeout_s=args.timeout
    )
    source = PrometheusSource(PrometheusClient(args.prometheus_url), config.templates())
    return run_rollout(backend, source, config, on_step=lambda r: _write(args, r), log=_log)


def _run_vertex(args: argparse.Namespace, config: Any) -> Any:
    from kfpkit.components.rollout.analysis import run_rollout
    from kfpkit.components.rollout.vertex import vertex_rollout_parts

    if not args.project or not args.endpoint:
        raise _UsageError("--backend vertex needs --project and --endpoint")
    backend, source = vertex_rollout_parts(
        project=args.project,
        location=args.location,
        endpoint_id=args.endpoint,
        api_endpoint=args.vertex_api_endpoint,
        monitoring_endpoint=args.monitoring_api_endpoint,
        payload_log=args.payload_log,
        delay_s=args.metrics_delay,
        timeout_s=args.timeout,
    )
    return run_rollout(backend, source, config, on_step=lambda r: _write(args, r), log=_log)
