# kfpkit — `make run` (set up + run the training pipeline on the built-in sample), `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3.11
VENV := .venv
TFDV_VENV := .venv-tfdv
PY := $(VENV)/bin/python
TFDV_PY := $(TFDV_VENV)/bin/python
MLSERVER_VENV := .venv-mlserver
MLSERVER_PY := $(MLSERVER_VENV)/bin/python
EVIDENTLY_VENV := .venv-evidently
EVIDENTLY_PY := $(EVIDENTLY_VENV)/bin/python
BENCH_DRIFT_ARGS ?=
LOADTEST_ARGS ?=
BENCH_ARGS ?=
BENCH_TRAIN_ARGS ?=
BENCH_VALIDATE_ARGS ?=
IMAGES_ARGS ?=
REGISTRY_DIR ?= ./local_registry
PIPELINE_ROOT ?= ./local_outputs
SOURCE ?= synthetic://fraud?rows=100000&seed=0
LABEL_COLUMN ?= is_fraud
MODEL_NAME ?= fraud-detector
BUILD_DIR ?= build
REGISTRY ?= ghcr.io/kfpkit
TAG ?= $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' core/_version.py)
PYTEST_ARGS ?=

.PHONY: typecheck help setup setup-main setup-tfdv setup-mlserver run test test-fast lint format compile golden clean lock serve images loadtest fuzz bench-serving bench-train bench-quality bench-validate readmes

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-14s %s\n", $$1, $$2}'

setup: setup-main setup-tfdv ## create .venv (main env) and .venv-tfdv (TFDV env) from the lock files

setup-main: $(VENV)/.installed
setup-tfdv: $(TFDV_VENV)/.installed

$(VENV)/.installed: requirements/main.lock setup.py pyproject.toml
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(PY) -m pip install -q --no-deps -r requirements/main.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(TFDV_VENV)/.installed: requirements/tfdv.lock setup.py pyproject.toml
	test -x $(TFDV_PY) || $(PYTHON_BOOT) -m venv $(TFDV_VENV)
	$(TFDV_PY) -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(TFDV_PY) -m pip install -q --no-deps -r requirements/tfdv.lock
	$(TFDV_PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup-mlserver: $(MLSERVER_VENV)/.installed ## create .venv-mlserver (MLServer + mlserver-sklearn, the benchmark peer)

$(MLSERVER_VENV)/.installed: requirements/mlserver.lock
	test -x $(MLSERVER_PY) || $(PYTHON_BOOT) -m venv $(MLSERVER_VENV)
	$(MLSERVER_PY) -m pip install -q --upgrade pip "setuptools>=68" wheel
	$(MLSERVER_PY) -m pip install -q --no-deps -r requirements/mlserver.lock
	touch $@

.PHONY: setup-evidently bench-drift
setup-evidently: $(EVIDENTLY_VENV)/.installed ## create .venv-evidently (Evidently 0.7.23 + pandas 2, the drift benchmark peer)

$(EVIDENTLY_VENV)/.installed: requirements/evidently.lock
	test -x $(EVIDENTLY_PY) || $(PYTHON_BOOT) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_PY) -m pip install -q --upgrade pip "setuptools>=68" wheel
	$(EVIDENTLY_PY) -m pip install -q --no-deps -r requirements/evidently.lock
	touch $@

NANNYML_VENV := .venv-nannyml
NANNYML_PY := $(NANNYML_VENV)/bin/python
BENCH_PERFORMANCE_ARGS ?=
.PHONY: setup-nannyml bench-performance
setup-nannyml: $(NANNYML_VENV)/.installed ## create .venv-nannyml (NannyML 0.13.1 + pandas 2, the performance benchmark peer; Python < 3.13)

$(NANNYML_VENV)/.installed: requirements/nannyml.lock
	test -x $(NANNYML_PY) || $(PYTHON_BOOT) -m venv $(NANNYML_VENV)
	$(NANNYML_PY) -m pip install -q --upgrade pip "setuptools>=68" wheel
	$(NANNYML_PY) -m pip install -q --no-deps -r requirements/nannyml.lock
	touch $@

bench-performance: setup-main setup-nannyml ## benchmarks/performance: kfpkit performance vs NannyML CBPE, 100k and 1M scored rows (~10 min)
	$(PY) -m benchmarks.performance.bench_performance $(BENCH_PERFORMANCE_ARGS)

.PHONY: system-packages setup-checkov
SYSTEM_PACKAGES := prometheus:prometheus promtool:prometheus nginx:nginx-light wrk:wrk kubectl:kubernetes-client \
	dockerd:docker.io debootstrap:debootstrap
CHECKOV_VENV := .venv-checkov
system-packages: ## apt-get install prometheus, nginx-light, wrk, kubernetes-client, docker.io, debootstrap when root and their binaries are missing
	@missing=""; for pair in $(SYSTEM_PACKAGES); do bin=$${pair%%:*}; pkg=$${pair##*:}; \
		PATH="$$PATH:/usr/sbin" command -v $$bin >/dev/null || case " $$missing " in *" $$pkg "*) ;; *) missing="$$missing $$pkg";; esac; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "missing Debian packages:$$missing (not root: the tests that need them skip; under CI=true they fail)"; fi

setup-checkov: $(CHECKOV_VENV)/.installed ## create .venv-checkov (checkov, pinned apart from the main env) for the manifest tests

$(CHECKOV_VENV)/.installed: requirements/checkov.lock
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON_BOOT) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q --no-deps -r requirements/checkov.lock
	touch $@

run: setup ## train on the built-in sample (100k synthetic transactions; SOURCE=, LABEL_COLUMN=, MODEL_NAME= for your table) into ./local_registry
	$(VENV)/bin/kfpkit run training --source '$(SOURCE)' --label-column $(LABEL_COLUMN) \
		--registry $(REGISTRY_DIR) --model-name $(MODEL_NAME) --pipeline-root $(PIPELINE_ROOT) \
		--tfdv-python $(TFDV_PY) --summary-json $(PIPELINE_ROOT)/last_run_summary.json

.PHONY: demo
DEMO_DIR ?= ./demo_outputs
DEMO_ARGS ?=
demo: setup system-packages ## the whole loop on this machine: train v1+v2, canary, drifted traffic, monitor, retrain (~5 min)
	$(PY) -m demo --work-dir $(DEMO_DIR) --model-name $(MODEL_NAME) --tfdv-python $(TFDV_PY) $(DEMO_ARGS)

# pytest-xdist workers for `make test`: most tests wait on subprocesses (kfp.local tasks, TFDV, servers), so two
# workers on a 2-core machine nearly halve the wall time; --dist loadfile keeps each file's fixtures in one worker
TEST_WORKERS ?= 2
# pytest runs under images/engine.py: with DOCKER_HOST of an engine that answers, started (as root) when none does
# and stopped when pytest ends, pass or fail; without one the container tests skip (under CI=true they fail)
test: setup system-packages setup-checkov ## run every test (lint and type check included), on TEST_WORKERS pytest-xdist workers
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m tools.typecheck
	$(PY) -m images.engine run -- $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

test-fast: setup-main ## tests without the slow and TFDV ones
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow and not tfdv" $(PYTEST_ARGS)

lint: setup-main ## ruff lint + format check, mypy over every shipped package
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m tools.typecheck

typecheck: setup-main ## mypy over every shipped package: kfpkit.core, .cli, .pipelines, .serving, .components, .onebox (tools/typecheck.py)
	$(PY) -m tools.typecheck

format: setup-main ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

compile: setup-main ## compile every pipeline for Kubeflow and Vertex into ./build
	$(VENV)/bin/kfpkit compile --target kubeflow --out $(BUILD_DIR)
	$(VENV)/bin/kfpkit compile --target vertex --out $(BUILD_DIR)

golden: setup-main ## regenerate tests/golden: every registered pipeline x target (tools/golden.py)
	$(PY) -m tools.golden tests/golden

readmes: setup-main ## regenerate the inputs/outputs tables of components/*/README.md (tools/component_readmes.py)
	$(PY) -m tools.component_readmes

serve: setup-main ## serve the latest blessed model of ./local_registry with the KServe ModelServer
	@uri="$$($(PY) -c 'import sys; from kfpkit.core import registry; e = registry.latest_blessed(*sys.argv[1:]); print(e.uri if e else "")' \
		$(REGISTRY_DIR) $(MODEL_NAME))"; \
	test -n "$$uri" || { echo "no blessed model in $(REGISTRY_DIR); run 'make run' first"; exit 1; }; \
	echo "serving $$uri"; \
	$(VENV)/bin/kfpkit serve --model-name $(MODEL_NAME) --http-port 8080 --model-dir "$$uri"

loadtest: setup-main ## headless locust run against kfpkit serve on 127.0.0.1 (benchmarks/serving; 20 s / 200k requests)
	$(PY) -m benchmarks.serving.loadtest $(LOADTEST_ARGS)

fuzz: setup-main ## longer property-based fuzz of kfpkit serve (FUZZ_EXAMPLES per protocol, default 2500: ~2 min, 20k requests)
	KFPKIT_FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),2500) $(VENV)/bin/pytest -q -p no:cacheprovider tests/serving/test_fuzz.py

bench-serving: setup-main setup-mlserver ## benchmarks/serving: kfpkit vs the limit row, MLServer, KServe sklearnserver; 1,000-row batches; real MLP vs plain KServe (~9 min)
	@command -v wrk >/dev/null || echo "wrk not found (apt-get install -y wrk): using the slower Python load generator"
	$(PY) -m benchmarks.serving.bench_serving --mlserver-bin $(MLSERVER_VENV)/bin/mlserver $(BENCH_ARGS)
	$(PY) -m benchmarks.serving.bench_mlp $(BENCH_MLP_ARGS)

bench-train: setup-main ## benchmarks/train: PyTorch trainer vs the sklearn baseline, fit rows/s (BENCH_TRAIN_ARGS=...)
	$(PY) -m benchmarks.train.bench_train $(BENCH_TRAIN_ARGS)

bench-quality: setup-main ## benchmarks/quality: default PyTorch vs the sklearn baseline at 5k-100k rows and sklearn's tables; PR-AUC, ECE vs its noise floor (BENCH_QUALITY_ARGS=...)
	$(PY) -m benchmarks.quality.bench_quality $(BENCH_QUALITY_ARGS)

.PHONY: bench-gate
bench-gate: setup-main ## benchmarks/quality: evaluate's gate, false regressions over 20 retrain pairs and shuffled-label models, 20k rows (~30 min; BENCH_GATE_ARGS=...)
	$(PY) -m benchmarks.quality.gate_sweep $(BENCH_GATE_ARGS)

bench-validate: setup ## benchmarks/validate: run_validation vs bare TFDV statistics (BENCH_VALIDATE_ARGS=...)
	$(PY) -m benchmarks.validate.bench_validate --tfdv-python $(TFDV_PY) $(BENCH_VALIDATE_ARGS)

.PHONY: bench-skew
bench-skew: setup ## benchmarks/validate: skew false alarms on hash splits, TFDV's old check vs kfpkit's, 1k-1M rows x 20 seeds (~15 min on 2 shared cores; BENCH_SKEW_ARGS=...)
	$(PY) -m benchmarks.validate.skew_sweep --tfdv-python $(TFDV_PY) $(BENCH_SKEW_ARGS)

bench-drift: setup setup-evidently ## benchmarks/drift: kfpkit monitor vs Evidently DataDriftPreset vs TFDV, 100k and 1M rows (~15 min)
	$(PY) -m benchmarks.drift.bench_drift $(BENCH_DRIFT_ARGS)

.PHONY: docker-engine docker-engine-stop images-local
docker-engine: setup-main ## start a private dockerd (root) when no engine answers; last line: export DOCKER_HOST=... (images/engine.py)
	@$(PY) -m images.engine start

docker-engine-stop: setup-main ## stop the private dockerd that make docker-engine started (no other engine)
	@$(PY) -m images.engine stop

images-local: setup-main system-packages ## build the four images on this machine, tagged as the pipelines name them (local base, CPU torch; images/local_build.py)
	$(PY) -m images.engine run -- $(PY) -m images.local_build $(IMAGES_ARGS)

images: setup-main ## build the four images with docker or buildah (REGISTRY=..., TAG=..., IMAGES_ARGS=--push)
	$(PY) -m images.build --registry $(REGISTRY) --tag $(TAG) $(IMAGES_ARGS)

lock: ## re-generate requirements/main.lock from the current .venv (after changing dependencies)
	{ sed -n '1,2p' requirements/main.lock; $(PY) -m pip freeze --all --exclude-editable | grep -vE '^(pip|wheel)==' | sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/'; } > requirements/main.lock.new
	mv requirements/main.lock.new requirements/main.lock

clean: ## remove build outputs, local runs and caches (keeps the environments)
	rm -rf $(BUILD_DIR) $(PIPELINE_ROOT) $(REGISTRY_DIR) .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv*' -prune -exec rm -rf {} +
