"""``kfpkit monitor``: compare a live window with a model version's baseline from the command line.

    kfpkit monitor --model-uri URI --live SOURCE [--since T --until T] --out DIR [--summary-json PATH]
                   [--thresholds JSON-FILE] [--alpha A] [--no-score-trigger]

``SOURCE`` is a payload-log URI (root or ``<root>/<model>/<version>``) or a CSV/Parquet/JSON Lines table of
raw feature rows. ``--out`` receives ``drift.json`` (the drift report), ``summary.json`` (the drift summary;
both records of :mod:`kfpkit.core.drift_summary`) and ``report.html``; ``--summary-json`` writes the summary
again where it says. Exit codes: 0 the window was compared (whether or not drift was found: read
``drift_detected`` in the summary), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds every ``kfpkit monitor`` option to ``parser``."""
    parser.add_argument("--model-uri", required=True, help="model version folder or registry URI")
    parser.add_argument("--live", required=True, help="payload-log URI or a CSV/Parquet/JSON Lines table")
    parser.add_argument("--since", default=None, help="start of the payload-log time range (ISO-8601, inclusive)")
    parser.add_argument("--until", default=None, help="end of the payload-log time range (ISO-8601, exclusive)")
    parser.add_argument("--out", required=True, help="folder for drift.json, summary.json and report.html")
    parser.add_argument("--summary-json", default=None, help="also write the summary JSON here")
    parser.add_argument("--thresholds", default=None, help='JSON file {feature: {metric: value}} ("*": every one)')
    parser.add_argument("--alpha", type=float, default=None, help="false-alarm probability per metric (1e-6)")
    parser.add_argument("--no-score-trigger", action="store_true", help="score drift alone does not set drift_detected")


def run(args: argparse.Namespace) -> int:
    """Runs ``kfpkit monitor``; returns the exit status (see the module docstring)."""
    from kfpkit.components.monitor.logic import MonitorError, OutputPaths, run_monitor
    from kfpkit.core import distances as mm

    thresholds: Optional[Any] = None
    try:
        if args.thresholds:
            with open(args.thresholds, encoding="utf-8") as fh:
                thresholds = json.load(fh)
        outputs = OutputPaths.in_folder(args.out)
        result = run_monitor(
            model_uri=args.model_uri,
            live=args.live,
            outputs=outputs,
            since=args.since,
            until=args.until,
            thresholds=thresholds,
            alpha=args.alpha if args.alpha is not None else mm.DEFAULT_ALPHA,
            score_drift_triggers=not args.no_score_trigger,
        )
    except (MonitorError, OSError, ValueError) as exc:
        print(f"kfpkit monitor: {exc}", file=sys.stderr)
        return 2
    if args.summary_json:
        from kfpkit.core.records import write_record

        write_record(os.path.abspath(args.summary_json), result.summary())
    verdict = f"DRIFT in {', '.join(result.drifted_features) or 'the score'}" if result.drift_detected else "no drift"
    print(f"kfpkit monitor: {result.rows:,} live rows, {verdict}; report {outputs.report_html}")
    return 0
