"""``kfpkit submit``: run or schedule a pipeline on Kubeflow Pipelines or Vertex AI."""

from kfpkit.pipelines.submit import add_arguments, run

__all__ = ["add_arguments", "run"]
