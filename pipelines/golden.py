"""Golden compiled pipelines: compile every pipeline × target and normalize volatile fields.

``python -m kfpkit.pipelines.golden tests/golden`` (``make golden``) rewrites the golden files; the golden
test compiles again and compares. Normalized: the kfp SDK version and the kfpkit image tag (both change
on upgrades without changing the pipeline's meaning).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from typing import Dict

from kfpkit.components import __version__

_SDK_VERSION = re.compile(r"^(sdkVersion: )kfp-[0-9][^\s]*$", re.MULTILINE)


def normalize(text: str) -> str:
    text = _SDK_VERSION.sub(r"\1kfp-SDK_VERSION", text)
    return text.replace(f":{__version__}", ":KFPKIT_VERSION")


def compile_normalized() -> Dict[str, str]:
    """``{"<pipeline>.<target>.yaml": normalized text}`` for every pipeline and target."""
    from kfpkit.pipelines import targets

    out: Dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in targets.compile_all(tmp):
            with open(path, encoding="utf-8") as fh:
                out[os.path.basename(path)] = normalize(fh.read())
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = argv[0] if argv else "tests/golden"
    os.makedirs(folder, exist_ok=True)
    for name, text in compile_normalized().items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            fh.write(text)
        print(os.path.join(folder, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
