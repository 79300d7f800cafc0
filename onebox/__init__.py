"""kfpkit.onebox: kfpkit's processes on one machine, for people and tests without a cluster.

* :mod:`~kfpkit.onebox.stack` -- nginx (the local traffic backend), Prometheus and ``kfpkit serve``
  processes on loopback ports;
* :mod:`~kfpkit.onebox.replay` -- replays a table of feature rows against a predictor at a set rate.

Installed with the package (``kfpkit rollout --backend local [--replay TABLE]`` uses it) but copied into
no image: no pipeline task or predictor on a cluster imports it. The demo that chains the whole loop on one
machine is the repository's ``demo/`` (``make demo``), which is not installed.
"""
