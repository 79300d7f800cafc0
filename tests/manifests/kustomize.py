"""Rendering the project's kustomizations with a real kustomize (kubectl's), for every manifest test."""

from __future__ import annotations

import os
import subprocess
from typing import Dict, List, Sequence

import yaml

from tests import system_packages
from tests.manifests import kserve_schemas

MANIFESTS = os.path.join(kserve_schemas.PROJECT_ROOT, "manifests")
# the fields kustomize v2.0.3 (Debian's kubernetes-client) and current kustomize both accept
PORTABLE_FIELDS = {"resources", "patchesStrategicMerge", "patchesJson6902", "namespace", "commonLabels", "images"}


def render_all(names: Sequence[str]) -> Dict[str, List[dict]]:
    """``kubectl kustomize manifests/<name>`` for each name: the rendered documents, by name."""
    kubectl = system_packages.require("kubectl")
    out = {}
    for name in names:
        result = subprocess.run(
            [kubectl, "kustomize", os.path.join(MANIFESTS, name)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{name}: {result.stderr}"
        out[name] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return out


def kustomization_fields(name: str) -> set:
    """The top-level fields of ``manifests/<name>/kustomization.yaml``."""
    with open(os.path.join(MANIFESTS, name, "kustomization.yaml"), encoding="utf-8") as fh:
        return set(yaml.safe_load(fh))
