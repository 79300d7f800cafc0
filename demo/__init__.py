"""The demo: the whole kfpkit loop on one machine (``make demo``, or ``python -m demo`` from the repository root).

Not installed and in no image: it only demonstrates kfpkit, like ``benchmarks/`` measures it.

* :mod:`demo.cli` -- the options and the entry point;
* :mod:`demo.stages` -- the six stages (train v1, train v2, canary, drifted traffic, monitor, retrain);
* :mod:`demo.summary` -- the typed demo summary record (``demo_summary.json``);
* :mod:`demo.shifts` -- synthetic drift applied to a table (also used by the monitor's tests and
  ``benchmarks/drift``).
"""
