"""kfpkit.serving: the KServe predictor of kfpkit model directories (``kfpkit serve``).

Import-light on purpose: kserve, torch and sklearn are imported by the submodules that need them
(:mod:`~kfpkit.serving.predictor`, :mod:`~kfpkit.serving.server`, :mod:`~kfpkit.cli.serve`);
:mod:`~kfpkit.serving.protocol` and :mod:`~kfpkit.serving.payloads` need only numpy (and orjson).
"""
