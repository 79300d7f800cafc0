# kfpkit-tfdv: the validate component (TFDV 1.16.1, Apache Beam, kfp executor 2.13; no torch), and with
# --target dataflow the same environment as a Beam SDK container for Dataflow workers.
# Build context: the repository root.
#   python -m images.build tfdv      (or: make images; builds both targets)
# Versions: the whole of requirements/tfdv.lock, installed without resolving (--no-deps).

ARG PYTHON_IMAGE=docker.io/library/python:3.11.10-slim-bookworm
# Must match apache-beam in requirements/tfdv.lock and the Python minor version of PYTHON_IMAGE.
ARG BEAM_SDK_IMAGE=docker.io/apache/beam_python3.11_sdk:2.61.0

# ---- the Beam SDK harness launcher (/opt/apache/beam/boot), for the dataflow target -----------------
FROM ${BEAM_SDK_IMAGE} AS beam_sdk

# ---- builder: a virtual environment in /opt/venv, copied whole into the runtime stage ----------------
FROM ${PYTHON_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Compilers for the lock's source-only packages with C/C++ extensions (crcmod, pyfarmhash), and binutils'
# strip (below); builder only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.9 \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:${PATH}
WORKDIR /src
RUN python -m venv /opt/venv

# Third-party dependencies first (only the lock), so that this layer is rebuilt only when it changes.
# Installed without bytecode (--no-compile): the workload below writes it for what validate imports.
# TensorFlow is the CPU build: the lock's `tensorflow==V` (what TFDV, tfx-bsl, tf-keras and tensorflow-serving-api
# require by name) is installed as `tensorflow-cpu==V` (the same release and requirements, built without CUDA
# kernels: ~0.5 GB less) plus a metadata-only `tensorflow==V` wheel built here that requires it, as
# TensorFlow's own `tensorflow` metapackage does on Windows (tensorflow-intel). The lock stays the source
# of V; check_pins accepts tensorflow-cpu at V only (/tmp/tensorflow-cpu.lock). README.md:
# "TensorFlow CPU in the tfdv image".
COPY requirements/tfdv.lock requirements/tfdv.lock
COPY images/check_pins.py images/check_pins.py
RUN tf="$(sed -n 's/^tensorflow==//p' requirements/tfdv.lock)" && test -n "${tf}" \
    && echo "tensorflow-cpu==${tf}" > /tmp/tensorflow-cpu.lock \
    && grep -v '^tensorflow==' requirements/tfdv.lock | cat - /tmp/tensorflow-cpu.lock > /tmp/tfdv-cpu.lock \
    && meta="/tmp/tensorflow-meta/tensorflow-${tf}.dist-info" && mkdir -p "${meta}" \
    && printf 'Metadata-Version: 2.1\nName: tensorflow\nVersion: %s\nSummary: %s\nRequires-Dist: tensorflow-cpu==%s\n' \
        "${tf}" "metadata only (kfpkit tfdv image): TensorFlow is the tensorflow-cpu distribution" "${tf}" \
        > "${meta}/METADATA" \
    && printf 'Wheel-Version: 1.0\nGenerator: kfpkit images/tfdv.Dockerfile\nRoot-Is-Purelib: true\nTag: py3-none-any\n' \
        > "${meta}/WHEEL" \
    && printf "tensorflow-${tf}.dist-info/%s,,\n" METADATA WHEEL RECORD > "${meta}/RECORD" \
    && python -m zipfile -c "/tmp/tensorflow-${tf}-py3-none-any.whl" "${meta}" \
    && pip install --no-cache-dir --no-compile --no-deps -r /tmp/tfdv-cpu.lock "/tmp/tensorflow-${tf}-py3-none-any.whl" \
    && python images/check_pins.py requirements/tfdv.lock /tmp/tensorflow-cpu.lock

# Optional extra packages (pin them: the lock constrains only the packages it lists), e.g. what the lock's
# environment markers add on another Python patch release: redis requires async-timeout below Python 3.11.3.
ARG EXTRAS=""
RUN if [ -n "${EXTRAS}" ]; then \
        echo "${EXTRAS}" | tr -s ' ' '\n' > /tmp/extras.txt \
        && pip install --no-cache-dir --no-compile -c requirements/tfdv.lock -r /tmp/extras.txt; \
    fi

# What no code in the image runs, removed before the runtime stage copies the environment (~0.5 GB): the
# installed packages' own test suites (*/tests) and TensorFlow's C++ headers (for building custom ops; the
# image has no compiler). Then the shared objects' symbol tables and debug sections, which only debuggers
# and linkers read (strip --strip-unneeded keeps the dynamic symbols; ~0.37 GB, 0.17 GB of them TensorFlow's);
# not the libraries auditwheel grafted into */*.libs/, which patchelf rewrote.
RUN site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && find "${site}" -type d -name tests -prune -exec rm -rf {} + \
    && rm -rf "${site}/tensorflow/include" \
    && find /opt/venv -type f \( -name '*.so' -o -name '*.so.*' \) -not -path '*.libs/*' \
        -exec strip --strip-unneeded {} +

# Bytecode (__pycache__/*.pyc in /opt/venv) for exactly the modules that validate imports, and for no other
# (~0.09 of the ~0.28 GB that compiling every module took): a tiny real TFDV run with the library calls of
# components/validate (in memory and Beam's DirectRunner, infer_schema, validate_statistics with the skew
# and drift comparators), with PYTHONDONTWRITEBYTECODE unset. It reads this file and the lock only, so a
# source edit does not rebuild this layer. A module it does not import is compiled on its first import
# where the root is writable (a Dataflow worker), and read from source on a read-only root.
# README.md: "Bytecode for what validate imports".
COPY images/tfdv_bytecode.py images/tfdv_bytecode.py
RUN env -u PYTHONDONTWRITEBYTECODE -u PYTHONPYCACHEPREFIX HOME=/tmp/bytecode-home \
        /opt/venv/bin/python images/tfdv_bytecode.py \
    && rm -rf /tmp/bytecode-home \
    && test -n "$(find /opt/venv -path '*/tensorflow_data_validation/__pycache__/*.pyc' -print -quit)"

# ---- kfpkit_wheel: kfpkit's own wheel, from the sources, which are copied last so that a source edit ------
# rebuilds only this small stage and the runtime's last layer, never the environment above.
FROM builder AS kfpkit_wheel
COPY setup.py pyproject.toml README.md ./
COPY cli/ cli/
COPY components/ components/
COPY core/ core/
COPY pipelines/ pipelines/
COPY serving/ serving/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- runtime: the slim Python image, the virtual environment and a non-root user; no build tools ------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=dev
LABEL org.opencontainers.image.title="kfpkit-tfdv" \
      org.opencontainers.image.description="kfpkit validate component: TensorFlow Data Validation (KFP v2)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/home/kfpkit
# uid 1000 (numeric USER below, so that runAsNonRoot can verify it); group 0 may write HOME and the KFP
# launcher's artifact roots, for platforms that run the image with an arbitrary uid in group 0 (OpenShift).
RUN useradd --uid 1000 --gid 0 --create-home --home-dir /home/kfpkit --shell /usr/sbin/nologin kfpkit \
    && mkdir -p /gcs /minio /s3 \
    && chown 1000:0 /home/kfpkit /gcs /minio /s3 \
    && chmod 0775 /home/kfpkit /gcs /minio /s3
COPY --from=builder /opt/venv /opt/venv
# kfpkit itself (no dependencies: they are all in the environment), then pip's consistency check.
COPY --from=kfpkit_wheel /wheels/ /tmp/kfpkit-wheel/
RUN pip install --no-cache-dir --no-deps /tmp/kfpkit-wheel/*.whl \
    && rm -rf /tmp/kfpkit-wheel \
    && pip check
USER 1000
WORKDIR /home/kfpkit

# ---- dataflow: --sdk_container_image for Dataflow (Runner v2) workers ---------------------------------
# Dataflow starts the container with its own arguments to the Beam boot launcher, so the launcher must be
# the ENTRYPOINT, and it runs the SDK harness as root: Dataflow mounts its worker directories (/var/opt/...)
# owned by root. Not for KFP: an ENTRYPOINT would be prepended to kfp.local's DockerRunner command.
# The root is writable there: PYTHONDONTWRITEBYTECODE empty (unset for Python), so a module that has no
# bytecode in the image is compiled once per worker container, not by every process (README.md: "Bytecode
# for what validate imports").
FROM runtime AS dataflow
ENV PYTHONDONTWRITEBYTECODE=
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam
# hadolint ignore=DL3002
USER 0
ENTRYPOINT ["/opt/apache/beam/boot"]

# ---- tfdv (default target): the KFP image; no ENTRYPOINT, KFP runs its own command -------------------
FROM runtime AS tfdv
USER 1000
