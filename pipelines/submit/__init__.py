"""Run or schedule a compiled kfpkit pipeline on Kubeflow Pipelines or Vertex AI (``kfpkit submit``).

One module per job; the subcommand itself (its flags and ``run``) is :mod:`kfpkit.cli.submit`:

* :mod:`~kfpkit.pipelines.submit.prepare` -- compile the pipeline for the target and check the run's
  parameters (a params file, ``--param`` values; :mod:`kfpkit.pipelines.parameters`) against the compiled
  spec's ``root.inputDefinitions.parameters``, and the registry root against the target;
* :mod:`~kfpkit.pipelines.submit.cron` -- the two cron dialects (KFP: 6 fields, seconds first; Vertex AI:
  5 fields, optional ``TZ=``);
* :mod:`~kfpkit.pipelines.submit.kubeflow` -- upload once per distinct package, then a run or a recurring
  run, through ``kfp.Client``;
* :mod:`~kfpkit.pipelines.submit.vertex` -- a ``PipelineJob`` or a ``Schedule`` through aiplatform's
  ``aiplatform_v1`` clients;
* :mod:`~kfpkit.pipelines.submit.submission` -- what was created (:class:`Submission`) and its lines;
* :mod:`~kfpkit.pipelines.submit.follow` -- poll a run to its end with one line per change;
* :mod:`~kfpkit.pipelines.submit.errors` -- :class:`SubmitError`, bad input found before anything was sent.

Every check that needs no service runs before anything is sent. kfp, kfp.Client and aiplatform are
imported inside the functions that use them, so the checks stay cheap to import.
"""
