"""``kfpkit performance``: is the live model still accurate? Delayed labels, matured cohorts, estimates.

    kfpkit performance --model-uri URI --live PAYLOAD_LOG_OR_TABLE --labels TABLE [--labels TABLE ...]
                       --label-column NAME [--key request_id,instance] [--labelled-at-column labelled_at]
                       [--timestamp-column timestamp] [--score-column score] --cohort 1d --maturity 30d
                       [--min-labelled-share S] --as-of ISO8601 [--since ISO8601] --out DIR
                       [--summary-json PATH] [--resamples N] [--level L] [--alpha A] [--seed S]

``--out`` receives ``summary.json`` (the performance summary, :mod:`kfpkit.core.performance_summary`) and
``report.html``; ``--summary-json`` writes the summary again where it says. Exit codes: 0 the window was
judged (whether or not a cohort is degraded: read ``degraded`` in the summary), 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds every ``kfpkit performance`` option to ``parser``."""
    parser.add_argument("--model-uri", required=True, help="model version folder or registry URI (its card)")
    parser.add_argument("--live", required=True, help="payload-log URI or a table of scored rows")
    parser.add_argument("--labels", action="append", default=[], help="label table (repeat for several)")
    parser.add_argument("--label-column", required=True, help="the 0/1 label column of the label tables")
    parser.add_argument("--key", default="request_id,instance", help="key column(s), comma-separated")
    parser.add_argument("--labelled-at-column", default="labelled_at", help="when each label became known")
    parser.add_argument("--timestamp-column", default="timestamp", help="when each live row was scored")
    parser.add_argument("--score-column", default="score", help="the calibrated score of each live row")
    parser.add_argument("--cohort", default="1d", help="cohort length: 1d, 12h, 1w (default 1d)")
    parser.add_argument("--maturity", default="30d", help="label delay that matures a cohort ('' for none)")
    parser.add_argument("--min-labelled-share", type=float, default=0.0, help="labelled share that matures a cohort")
    parser.add_argument("--as-of", default=None, help="the moment the run looks from (ISO-8601; default now)")
    parser.add_argument("--since", default=None, help="leave out rows scored before this time (ISO-8601)")
    parser.add_argument("--out", required=True, help="folder for summary.json and report.html")
    parser.add_argument("--summary-json", default=None, help="also write the summary JSON here")
    parser.add_argument("--resamples", type=int, default=None, help="bootstrap resamples per interval (500)")
    parser.add_argument("--level", type=float, default=None, help="confidence level of the intervals (0.95)")
    parser.add_argument(
        "--alpha", type=float, default=None, help="false-alarm probability per metric and cohort (1e-4)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling")


def run(args: argparse.Namespace) -> int:
    """Runs ``kfpkit performance``; returns the exit status (see the module docstring)."""
    from kfpkit.components.performance import logic
    from kfpkit.components.performance.errors import PerformanceError
    from kfpkit.components.performance.labels import DEFAULT_KEY, optional_columns

    settings = logic.PerformanceSettings(
        cohort=args.cohort,
        maturity=args.maturity or None,
        min_labelled_share=args.min_labelled_share,
        resamples=args.resamples if args.resamples is not None else logic.DEFAULT_RESAMPLES,
        level=args.level if args.level is not None else logic.DEFAULT_LEVEL,
        alpha=args.alpha if args.alpha is not None else logic.DEFAULT_ALPHA,
        seed=args.seed,
    )
    inputs = logic.PerformanceInputs(
        model_uri=args.model_uri,
        live=args.live,
        labels=list(args.labels),
        label_column=args.label_column,
        key=optional_columns(args.key, DEFAULT_KEY),
        labelled_at_column=args.labelled_at_column,
        timestamp_column=args.timestamp_column,
        score_column=args.score_column,
        as_of=args.as_of,
        since=args.since,
    )
    outputs = logic.OutputPaths.in_folder(args.out)
    try:
        summary = logic.run_performance(inputs, settings, outputs)
    except (PerformanceError, OSError) as exc:
        print(f"kfpkit performance: {exc}", file=sys.stderr)
        return 2
    if args.summary_json:
        from kfpkit.core.records import write_record

        write_record(os.path.abspath(args.summary_json), summary)
    mature = sum(c.mature for c in summary.cohorts)
    degraded = summary.degraded_cohorts
    verdict = "no cohort degraded"
    if degraded:
        verdict = f"DEGRADED from {degraded[0].start[:10]} ({len(degraded)} cohort(s))"
    print(
        f"kfpkit performance: {summary.rows:,} scored rows, {len(summary.cohorts)} cohorts ({mature} matured), "
        f"{verdict}; report {outputs.report_html}"
    )
    return 0
