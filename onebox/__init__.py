"""kfpkit.onebox: the whole system on one machine, for people and tests without a cluster.

* :mod:`~kfpkit.onebox.stack` -- nginx (the local traffic backend), Prometheus and ``kfpkit serve``
  processes on loopback ports;
* :mod:`~kfpkit.onebox.replay` -- replays a table of feature rows against a predictor at a set rate;
* :mod:`~kfpkit.onebox.shifts` -- synthetic drift applied to a table, for the demo and the monitor's tests;
* :mod:`~kfpkit.onebox.demo` -- ``kfpkit demo``'s stages.

Installed with the package (``kfpkit demo`` and ``kfpkit rollout --backend local`` use it) but copied
into no image: no pipeline task or predictor on a cluster imports it.
"""
