"""``python -m demo`` (``make demo``): the whole loop on one machine, no cluster (see :mod:`demo.stages`).

    python -m demo [--work-dir DIR] [--rows N] [--epochs N] [--framework pytorch|sklearn]
                [--steps 25,50,100] [--interval 8s] [--rps N] [--drifted-rows N] [--summary-json PATH]

Exit status: 0 every stage ran (whatever the rollout decided and the monitor found), 1 a stage failed,
2 bad arguments or a missing system package (nginx, Prometheus).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, List, Optional

from demo.stages import EXIT_USAGE, SUMMARY_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the demo's options to ``parser``."""
    from kfpkit.cli.rollout import parse_duration, parse_steps

    parser.add_argument("--work-dir", default="./demo_outputs", help="folder for everything the demo writes")
    parser.add_argument("--summary-json", default="", help=f"the demo summary (default <work-dir>/{SUMMARY_FILE})")
    parser.add_argument("--model-name", default="fraud-detector", help="model name in the registry and in KServe")
    d = parser.add_argument_group("data and training")
    d.add_argument("--rows", type=int, default=100000, help="synthetic rows per training run (default 100000)")
    d.add_argument("--seed", type=int, default=0, help="seed of v1's data; v2 and the traffic use seed+1..+3")
    d.add_argument("--v2-drift", type=float, default=0.2, help="drift knob of v2's newer data (default 0.2)")
    d.add_argument("--live-drift", type=float, default=1.0, help="drift knob of the drifted traffic (default 1.0)")
    d.add_argument("--framework", choices=["pytorch", "sklearn"], default="pytorch", help="default pytorch")
    d.add_argument("--epochs", type=int, default=None, help="maximum training epochs, PyTorch (pipeline default)")
    d.add_argument("--batch-size", type=int, default=None, help="training batch size, PyTorch (pipeline default)")
    d.add_argument(
        "--min-pr-auc", type=float, default=None, help="absolute PR-AUC floor of every version (pipeline default: none)"
    )
    d.add_argument(
        "--max-regression",
        type=float,
        default=0.02,
        help="v2's blessing: allowed PR-AUC drop against v1 on v2's test split (default 0.02)",
    )
    d.add_argument("--tfdv-python", default=None, help="interpreter of the TFDV environment")
    r = parser.add_argument_group("canary and traffic")
    r.add_argument("--steps", type=parse_steps, default=[25, 50, 100], help="canary weights (default 25,50,100)")
    r.add_argument("--interval", type=parse_duration, default=8.0, help="traffic analysed per step (default 8s)")
    r.add_argument("--rps", type=float, default=40.0, help="replayed requests per second (default 40)")
    r.add_argument("--min-requests", type=int, default=30, help="canary requests a step needs (default 30)")
    r.add_argument(
        "--min-latency-increase",
        type=parse_duration,
        default=0.03,
        help="a p99 ratio above the limit fails only past this increase (default 30ms: the box is shared)",
    )
    r.add_argument("--scrape-interval", type=parse_duration, default=0.5, help="Prometheus scrape (default 0.5s)")
    r.add_argument("--drifted-rows", type=int, default=3000, help="rows of drifted traffic (default 3000)")
    r.add_argument("--drifted-batch", type=int, default=20, help="rows per drifted request (default 20)")


def _raise_exit(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace) -> int:
    """Runs the demo; returns the exit status (see the module docstring)."""
    from demo.stages import Demo
    from kfpkit.onebox import stack as local

    missing = [
        f"{name} (Debian {package})"
        for name, package, extra in (("nginx", "nginx-light", ["/usr/sbin/nginx"]), ("prometheus", "prometheus", []))
        if not local.find_binary(name, extra)
    ]
    if missing:
        print(f"demo: missing {', '.join(missing)}: apt-get install -y nginx-light prometheus", file=sys.stderr)
        return EXIT_USAGE
    if args.rows < 1000 or args.drifted_rows < 200:
        print("demo: --rows must be at least 1000 and --drifted-rows at least 200", file=sys.stderr)
        return EXIT_USAGE
    previous = signal.signal(signal.SIGTERM, _raise_exit)
    try:
        return Demo(args).run()
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Optional[List[str]] = None) -> int:
    """Parses ``argv`` (default ``sys.argv[1:]``) and runs the demo; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
