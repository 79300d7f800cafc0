"""kfpkit: Kubeflow Pipelines components for tabular ML, from ingest to KServe.

Version ranges here are metadata for people installing kfpkit into their own environment; what ships
(images, CI, ``make setup``) installs the exact pins of ``requirements/*.lock``.
"""

import re
import warnings
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
# Every editable install of a package_dir layout warns about "folders in your working directory with the same
# name as your package": there is no kfpkit/ folder here (kfpkit.<sub> maps onto <sub>/), so it cannot apply.
warnings.filterwarnings("ignore", message="Editable installation", module="setuptools.command.editable_wheel")
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "core" / "_version.py").read_text()).group(1)

# kfpkit.<sub> lives in the top-level folder <sub>/ (README.md, Layout). benchmarks/, tools/ and images/ are
# developer folders of the repository, never installed (tests/benchmarks/test_not_shipped.py).
SUBPACKAGES = {
    "cli": "cli",
    "components": "components",
    "core": "core",
    "onebox": "onebox",
    "pipelines": "pipelines",
    "serving": "serving",
}
packages = []
package_dir = {}
for sub, folder in SUBPACKAGES.items():
    if not (HERE / folder).is_dir():  # the images copy no onebox/ (images/README.md)
        continue
    packages.append(f"kfpkit.{sub}")
    package_dir[f"kfpkit.{sub}"] = folder
    for found in find_packages(where=folder):
        packages.append(f"kfpkit.{sub}.{found}")
        package_dir[f"kfpkit.{sub}.{found}"] = f"{folder}/{found.replace('.', '/')}"

setup(
    name="kfpkit",
    version=VERSION,
    description="Kubeflow Pipelines v2 components: ingest, TFDV validation, GPU training, evaluation, "
    "registry push, KServe serving and monitoring",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license_expression="Apache-2.0",  # SPDX (PEP 639; setuptools>=77): no License :: classifier beside it
    python_requires=">=3.10,<3.13",
    packages=packages,
    package_dir=package_dir,
    package_data={"": ["*.md", "*.json", "*.yaml"]},
    include_package_data=True,
    install_requires=[
        "kfp>=2.13,<2.18",
        "numpy>=1.26",
        "pandas>=1.5",
        "pyarrow>=10",
        "fsspec>=2024.12",  # pipe_file(mode="create"): the registry claims version numbers with it
        "pyyaml>=6",
    ],
    extras_require={
        # main environment groups (exact pins: requirements/main.lock)
        "base": ["aiohttp>=3.9", "scikit-learn>=1.3", "skops>=0.9", "torch>=2.3"],  # ingest, evaluate, push
        "train": ["scikit-learn>=1.3", "skops>=0.9", "torch>=2.3"],
        "serving": [
            "kserve>=0.14",
            "orjson>=3.9",
            "prometheus-client>=0.17",
            "scikit-learn>=1.3",
            "skops>=0.9",
            "torch>=2.3",
        ],
        "kubeflow": ["kfp-kubernetes>=1.3"],
        "docker": ["docker>=7.1"],  # kfpkit run --runner docker (kfp.local's DockerRunner)
        "vertex": ["google-cloud-aiplatform>=1.60", "google-cloud-monitoring>=2.20"],  # + rollout's metrics
        "gcs": ["gcsfs>=2024.12"],  # exclusive create = ifGenerationMatch=0
        "s3": ["s3fs>=2024.12"],  # exclusive create = If-None-Match: * (botocore>1.35.20)
        # the TFDV environment (exact pins: requirements/tfdv.lock); never together with torch
        "tfdv": ["tensorflow-data-validation>=1.16,<1.17"],
    },
    entry_points={"console_scripts": ["kfpkit=kfpkit.cli.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
