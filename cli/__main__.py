"""``python -m kfpkit.cli``: the same as the ``kfpkit`` console script."""

import sys

from kfpkit.cli.main import main

sys.exit(main())
