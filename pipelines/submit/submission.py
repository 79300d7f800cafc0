"""What ``kfpkit submit`` created on a service: a run or a schedule, its ID and where to look at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, List, Optional

# The final states of a successful run (KFP V2beta1RuntimeState, Vertex PipelineState).
SUCCEEDED_STATES = ("SUCCEEDED", "PIPELINE_STATE_SUCCEEDED")


def default_run_name(pipeline: str) -> str:
    """``<pipeline>-<UTC time>``: the display name of a run or schedule that was given none."""
    return f"{pipeline}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"


@dataclass
class Submission:
    """What was created: a run or a schedule, its ID and where to look at it."""

    target: str
    kind: str  # "run" or "schedule"
    id: str
    url: Optional[str]
    name: str
    details: Dict[str, str] = field(default_factory=dict)
    state: Optional[str] = None  # the final state, after follow()

    @property
    def succeeded(self) -> bool:
        """Whether the followed run ended in a successful state."""
        return self.state in SUCCEEDED_STATES

    def lines(self) -> List[str]:
        """The lines ``kfpkit submit`` prints."""
        what = "recurring run" if self.kind == "schedule" and self.target == "kubeflow" else self.kind
        out = [f"{self.target} {what} {self.name!r} created", f"  id:  {self.id}"]
        out.append(f"  url: {self.url}" if self.url else "  url: (open the Kubeflow UI: Runs / Recurring Runs)")
        out += [f"  {key}: {value}" for key, value in self.details.items()]
        return out
