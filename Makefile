# regime_platform — `make run` then `make test`; `make ui` to look around; `make bench` for benchmarks.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# A DAGSTER_HOME you set (an absolute path) wins; otherwise the project's own .dagster/.
DAGSTER_HOME ?= $(CURDIR)/.dagster
export DAGSTER_HOME
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test ui bench venv dev-venv clean-data dagster-home

# The runtime for `make run` and `make ui`; `make test` adds the dev extras (pytest, TA-Lib, Playwright, ruff, dagster-k8s).
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	@# torch first: the CPU build 2.13.0; an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0 2>&1 | grep -v "is ignored: it is neither" || true
	$(PY) -m pip install -q -e . 2>&1 | grep -v "is ignored: it is neither" || true
	$(PY) -c "import torch, dagster, regime_platform; assert torch.__version__.startswith('2.13')"
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev]' 2>&1 | grep -v "is ignored: it is neither" || true
	@touch $@

venv: $(VENV)/.installed

dev-venv: $(VENV)/.dev-installed

# Copied from the template only when missing: a dagster.yaml you edited is never overwritten; when the template is
# newer, say so once per command and keep yours.
$(DAGSTER_HOME)/dagster.yaml:
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml.template $@

dagster-home: $(DAGSTER_HOME)/dagster.yaml
	@if [ dagster.yaml.template -nt $(DAGSTER_HOME)/dagster.yaml ]; then echo "note: dagster.yaml.template is newer \
	than $(DAGSTER_HOME)/dagster.yaml, which is kept as it is; compare them (diff dagster.yaml.template \
	$(DAGSTER_HOME)/dagster.yaml) and copy over what you need."; fi

run: venv dagster-home
	$(VENV)/bin/regime-platform run

test: dev-venv dagster-home
	$(VENV)/bin/ruff check regime_platform regime_platform_tests benchmarks
	$(VENV)/bin/pytest

ui: venv dagster-home
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# The platform's figures beside their floors (about 20 minutes on 2 cores, 2026-12-07), then RESULTS.md's table from them.
# BENCH_COLD_RUN=1 adds a default cold `regime-platform run` (about 12 minutes more). The studies recorded further down
# RESULTS.md (label settling, 500 tickers, forecast quality, macro inputs) are run by hand: each says its command.
bench: dev-venv dagster-home
	$(PY) benchmarks/bench_platform.py $(if $(BENCH_COLD_RUN),--cold-run)
	$(PY) benchmarks/bench_features.py
	$(PY) benchmarks/bench_training.py --folds 2 --epochs 5 --output benchmarks/results/training_bench.json
	$(PY) benchmarks/report.py
