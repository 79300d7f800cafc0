"""kfpkit's pipelines: platform-neutral definitions, target platforms, compilation, local runs and submission.

:mod:`kfpkit.pipelines.registry` names every pipeline (training, deployment, monitoring) and its builder;
:mod:`kfpkit.pipelines.platforms` and :mod:`kfpkit.pipelines.targets` add the Kubeflow or Vertex AI settings
and compile; :mod:`kfpkit.pipelines.local` runs a pipeline with kfp.local and :mod:`kfpkit.pipelines.submit`
sends it to a cluster, both with the run parameters of :mod:`kfpkit.pipelines.parameters`.
"""
