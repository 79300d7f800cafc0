"""kfpkit.core: the contracts every part of kfpkit reads and writes.

The model version directory (:mod:`~kfpkit.core.model_dir`, :mod:`~kfpkit.core.model_card`,
:mod:`~kfpkit.core.preprocessing`, :mod:`~kfpkit.core.monitoring_baseline`), the registry
(:mod:`~kfpkit.core.registry`, :mod:`~kfpkit.core.publish`), the splits (:mod:`~kfpkit.core.datasets`,
:mod:`~kfpkit.core.labels`), the metrics and distances (:mod:`~kfpkit.core.classification_metrics`,
:mod:`~kfpkit.core.distances`, :mod:`~kfpkit.core.numeric_shift`), the records that cross a process
(:mod:`~kfpkit.core.records`), the payload record of the serving logs (:mod:`~kfpkit.core.payload_record`)
and the traffic split between a stable and a canary version (:mod:`~kfpkit.core.traffic`).

Import-light: numpy at most at module level; pandas, torch, sklearn and fsspec inside the functions.
"""

from kfpkit.core._version import __version__

__all__ = ["__version__"]
