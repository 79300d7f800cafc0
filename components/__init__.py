"""kfpkit.components: reusable KFP v2 components and the kfp-free logic modules behind them."""

from kfpkit.core._version import __version__

__all__ = ["__version__"]
