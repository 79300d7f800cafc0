# kfpkit-serving: `kfpkit serve` (the KServe ModelServer with kfpkit's predictor; a KServe custom
# predictor image) and the infra_validate component (kfp executor). CPU PyTorch, scikit-learn, skops.
# Build context: the repository root.
#   python -m images.build serving   (or: make images)
# Versions: requirements/main.lock (pip constraints); names: images/serving.in.

ARG PYTHON_IMAGE=docker.io/library/python:3.11.10-slim-bookworm

# ---- builder: a virtual environment in /opt/venv, copied whole into the runtime stage ----------------
FROM ${PYTHON_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:${PATH}
WORKDIR /src
RUN python -m venv /opt/venv

# Third-party dependencies first (only the lock and the requirement list), so that these layers are rebuilt
# only when they change, not on every source edit.
COPY requirements/main.lock requirements/main.lock
# torch first, in a layer of its own that the base, serving and train builds share (same instructions): the
# version of the lock, CPU build, from TORCH_FIND_LINKS when set (a pip --find-links folder or URL of wheels,
# e.g. images/wheels, which the build context holds for that), else from TORCH_INDEX_URL.
COPY images/wheels/ images/wheels/
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_FIND_LINKS=""
RUN grep -E '^torch==' requirements/main.lock > /tmp/torch.txt \
    && if [ -n "${TORCH_FIND_LINKS}" ]; then \
        pip install --no-cache-dir --no-deps --no-index --find-links "${TORCH_FIND_LINKS}" -r /tmp/torch.txt; \
    elif [ -n "${TORCH_INDEX_URL}" ]; then \
        pip install --no-cache-dir --no-deps --index-url "${TORCH_INDEX_URL}" -r /tmp/torch.txt; \
    fi
# everything else from PyPI, constrained to the lock; then the environment is checked against the lock.
COPY images/serving.in images/check_pins.py images/
RUN pip install --no-cache-dir -c requirements/main.lock -r images/serving.in \
    && python images/check_pins.py requirements/main.lock

# Optional extra packages, e.g. --build-arg EXTRAS="gcsfs==2026.10.1 s3fs==2026.9.0" for gs:// and s3://
# URIs (sources, registry roots). Pin them: the lock constrains only the packages it lists.
ARG EXTRAS=""
RUN if [ -n "${EXTRAS}" ]; then \
        echo "${EXTRAS}" | tr -s ' ' '\n' > /tmp/extras.txt \
        && pip install --no-cache-dir -c requirements/main.lock -r /tmp/extras.txt; \
    fi

# What no code in the image runs, removed before the runtime stage copies the environment (~0.35 GB): the
# installed packages' own test suites (*/tests), torch's C++ headers (for building extensions; the image
# has no compiler) and torch's C++ test binaries (torch/test, torch/bin but for torch_shm_manager). Then
# the shared objects' symbol tables and debug sections, which only debuggers and linkers read (binutils'
# strip --strip-unneeded keeps the dynamic symbols; ~0.18 GB, 0.09 GB of them libtorch_cpu.so); not the
# libraries auditwheel grafted into */*.libs/, which patchelf rewrote. binutils stays in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils=2.40-2 \
    && rm -rf /var/lib/apt/lists/* \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && find "${site}" -type d -name tests -prune -exec rm -rf {} + \
    && rm -rf "${site}/torch/include" "${site}/torch/test" \
    && find "${site}/torch/bin" -mindepth 1 -maxdepth 1 -not -name torch_shm_manager -exec rm -rf {} + \
    && find /opt/venv -type f \( -name '*.so' -o -name '*.so.*' \) -not -path '*.libs/*' \
        -exec strip --strip-unneeded {} +

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
LABEL org.opencontainers.image.title="kfpkit-serving" \
      org.opencontainers.image.description="kfpkit KServe predictor, payload-sink and the infra_validate component" \
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
# KServe's conventions: the storage initializer puts the model version directory at /mnt/models; the
# ModelServer listens on 8080 (REST) and 8081 (gRPC). Name the model after the InferenceService in its args
# (--model-name). No ENTRYPOINT: KFP runs its own command in this image (infra_validate), and kfp.local's
# DockerRunner sets only CMD, so an ENTRYPOINT would be prepended to it.
EXPOSE 8080 8081
CMD ["kfpkit", "serve", "--model-dir", "/mnt/models", "--model-name", "model", "--http-port", "8080"]
