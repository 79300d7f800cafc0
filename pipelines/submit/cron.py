"""The cron expressions of schedules: KFP recurring runs (6 fields, seconds first) and Vertex AI schedules (5).

Both checks name the field at fault and offer the other dialect's spelling when the field count is off by
one (the most common slip between the two).
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from kfpkit.pipelines.submit.errors import SubmitError

_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
# field name, lowest, highest, names, whether '?' is allowed
_Field = Tuple[str, int, int, Dict[str, int], bool]
_KFP_FIELDS: Tuple[_Field, ...] = (
    ("seconds", 0, 59, {}, False),
    ("minutes", 0, 59, {}, False),
    ("hours", 0, 23, {}, False),
    ("day of month", 1, 31, {}, True),
    ("month", 1, 12, _MONTHS, False),
    ("day of week", 0, 6, _DAYS, True),
)
_VERTEX_FIELDS: Tuple[_Field, ...] = (
    ("minute", 0, 59, {}, False),
    ("hour", 0, 23, {}, False),
    ("day of month", 1, 31, {}, False),
    ("month", 1, 12, _MONTHS, False),
    ("day of week", 0, 7, _DAYS, False),
)
_KFP_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _check_cron_field(text: str, spec: _Field) -> Optional[str]:
    """Returns why ``text`` is not a valid cron field of ``spec``, or None."""
    name, low, high, names, question = spec
    if text == "?" and question:
        return None

    def number(token: str) -> Optional[int]:
        if token.upper() in names:
            return names[token.upper()]
        return int(token) if token.isdigit() else None

    for part in text.split(","):
        base, slash, step = part.partition("/")
        if slash and not (step.isdigit() and int(step) > 0):
            return f"{name} step {step!r} is not a positive number"
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        start, end = number(first), number(last) if dash else number(first)
        if start is None or end is None:
            return f"{name} {part!r} is not a number, range, list or step"
        if not (low <= start <= high and low <= end <= high):
            return f"{name} {part!r} is outside {low}-{high}"
        if start > end:
            return f"{name} range {base!r} runs backwards"
    return None


def _check_cron(expression: str, fields: List[str], specs: Tuple[_Field, ...], layout: str, hint: str) -> str:
    """Checks ``fields`` against ``specs``; ``layout`` names the dialect, ``hint`` follows a count error."""
    if len(fields) != len(specs):
        raise SubmitError(f"--schedule {expression!r}: {layout}; {hint}")
    for text, spec in zip(fields, specs, strict=True):
        problem = _check_cron_field(text, spec)
        if problem:
            raise SubmitError(f"--schedule {expression!r}: {problem}; {layout}")
    return expression


def check_kubeflow_cron(expression: str) -> str:
    """Checks a KFP recurring-run cron: 6 fields, **seconds first** (``"0 0 3 * * *"`` = 03:00 daily).

    KFP's scheduler (robfig/cron) also takes the descriptors @hourly, @daily, ... and ``@every 1h30m``.

    Returns:
        The expression, stripped.

    Raises:
        SubmitError: naming the field at fault; a 5-field (Unix) cron gets the 6-field spelling offered.
    """
    expression = expression.strip()
    if expression in _KFP_DESCRIPTORS or re.fullmatch(r"@every (\d+(ns|us|µs|ms|s|m|h))+", expression):
        return expression
    fields = expression.split()
    hint = f"did you mean '0 {expression}'?" if len(fields) == 5 else f"e.g. '0 0 3 * * *'; got {len(fields)} fields"
    return _check_cron(
        expression, fields, _KFP_FIELDS, "KFP cron has 6 fields with seconds first (SEC MIN HOUR DOM MON DOW)", hint
    )


def check_vertex_cron(expression: str) -> str:
    """Checks a Vertex AI schedule cron: 5 Unix fields, optionally prefixed by ``TZ=`` or ``CRON_TZ=``.

    Raises:
        SubmitError: naming the field at fault or the unknown time zone.
    """
    expression = expression.strip()
    body = expression
    match = re.match(r"^(CRON_TZ|TZ)=(\S+)\s+(.*)$", expression)
    if match:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(match.group(2))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SubmitError(f"--schedule {expression!r}: unknown time zone {match.group(2)!r}") from None
        body = match.group(3)
    fields = body.split()
    hint = (
        f"did you mean {' '.join(fields[1:])!r}?" if len(fields) == 6 else f"e.g. '0 3 * * *'; got {len(fields)} fields"
    )
    return _check_cron(
        expression, fields, _VERTEX_FIELDS, "Vertex AI cron has 5 fields (MIN HOUR DOM MON DOW), no seconds", hint
    )
