"""Container images of kfpkit's dependency groups: the one place component ``base_image`` values come from.

Every image is tagged with the package version, so a pipeline compiled by kfpkit X.Y.Z runs the code of
X.Y.Z. Components are decorated with the default registry; ``kfpkit compile --image-registry R`` rewrites
the prefix in the compiled pipeline (see :func:`kfpkit.pipelines.targets.compile_pipeline`).

| group   | image               | components                        |
|---------|---------------------|-----------------------------------|
| base    | ``kfpkit-base``     | ingest, evaluate, push, deploy, rollout, monitor |
| tfdv    | ``kfpkit-tfdv``     | validate                           |
| train   | ``kfpkit-train``    | train (CUDA build of PyTorch)      |
| serving | ``kfpkit-serving``  | predictor, infra_validate, payload-sink |

The Dockerfiles of these images (``<group>.Dockerfile``), the requirement lists they install (``<group>.in``,
versions from ``requirements/*.lock``) and the build command (``python -m images.build``,
``make images``) live beside this module; see ``images/README.md``.
"""

from __future__ import annotations

from typing import Dict, Optional

from kfpkit.core._version import __version__

DEFAULT_REGISTRY = "ghcr.io/kfpkit"

IMAGE_NAMES: Dict[str, str] = {
    "base": "kfpkit-base",
    "tfdv": "kfpkit-tfdv",
    "train": "kfpkit-train",
    "serving": "kfpkit-serving",
}


def image_for(group: str, registry: Optional[str] = None, tag: Optional[str] = None) -> str:
    """Returns the full image reference of a dependency group, e.g. ``ghcr.io/kfpkit/kfpkit-base:0.1.0``.

    Raises:
        KeyError: ``group`` is not one of :data:`IMAGE_NAMES`.
    """
    if group not in IMAGE_NAMES:
        raise KeyError(f"unknown image group {group!r}; known groups: {sorted(IMAGE_NAMES)}")
    prefix = (registry or DEFAULT_REGISTRY).rstrip("/")
    return f"{prefix}/{IMAGE_NAMES[group]}:{tag or __version__}"


def base_image() -> str:
    """The default reference of the base image, which runs the components of the main environment."""
    return image_for("base")


def tfdv_image() -> str:
    """The default reference of the TFDV image, which runs validate."""
    return image_for("tfdv")


def train_image() -> str:
    """The default reference of the CUDA training image, which runs train."""
    return image_for("train")


def serving_image() -> str:
    """The default reference of the serving image: the KServe predictor, which infra_validate runs too."""
    return image_for("serving")
