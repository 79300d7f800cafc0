"""Golden compiled pipelines: every pipeline of the registry × every target, with volatile fields normalized.

``python -m tools.golden [tests/golden]`` (``make golden``, from the repository root) rewrites the golden
files and removes golden files of pipelines or targets that no longer exist;
``tests/pipelines/test_compile.py`` compiles again and compares with :func:`normalize`. Normalized: the kfp
SDK version and the kfpkit image tag (both change on upgrades without changing the pipeline's meaning).
"""

from __future__ import annotations

import glob
import os
import re
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

from kfpkit.components import __version__

DEFAULT_FOLDER = os.path.join("tests", "golden")
_SDK_VERSION = re.compile(r"^(sdkVersion: )kfp-[0-9][^\s]*$", re.MULTILINE)


def normalize(text: str) -> str:
    """Compiled pipeline YAML with the kfp SDK version and kfpkit's image tag replaced by placeholders."""
    text = _SDK_VERSION.sub(r"\1kfp-SDK_VERSION", text)
    return text.replace(f":{__version__}", ":KFPKIT_VERSION")


def compile_normalized() -> Dict[str, str]:
    """``{"<pipeline>.<target>.yaml": normalized text}`` for every pipeline of the registry and every target."""
    from kfpkit.pipelines import registry, targets
    from kfpkit.pipelines.platforms import TARGETS

    out: Dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pipeline in registry.pipeline_names():
            for target in TARGETS:
                path = targets.compile_pipeline(pipeline, target, tmp)
                with open(path, encoding="utf-8") as fh:
                    out[os.path.basename(path)] = normalize(fh.read())
    return out


def write_golden(folder: str) -> List[str]:
    """Writes every golden file into ``folder`` and deletes stale ``*.yaml`` there; returns the paths written."""
    os.makedirs(folder, exist_ok=True)
    fresh = compile_normalized()
    for stale in sorted(set(glob.glob(os.path.join(folder, "*.yaml"))) - {os.path.join(folder, n) for n in fresh}):
        os.remove(stale)
        print(f"removed {stale}")
    written = []
    for name, text in sorted(fresh.items()):
        path = os.path.join(folder, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        written.append(path)
        print(path)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    write_golden(argv[0] if argv else DEFAULT_FOLDER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
