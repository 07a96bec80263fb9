# `make demo` and `make test` are the quick start; both create .venv on first use.
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
LOCK := constraints.txt
SYSTEM_PYTHON ?= python3
# The tests run in TEST_WORKERS processes (pytest-xdist; a worker that is done takes over another's remaining
# tests): each builds its own tiny models once. `make test TEST_WORKERS=1` runs them in this process.
TEST_WORKERS ?= 2
PARALLEL := $(if $(filter-out 1,$(strip $(TEST_WORKERS))),-n $(strip $(TEST_WORKERS)) --dist worksteal)

.DEFAULT_GOAL := help
.PHONY: help install lock demo test test-all lint clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install: $(INSTALLED) ## Create .venv with aigen, its dev extra and exactly the versions in constraints.txt

$(INSTALLED): pyproject.toml $(LOCK)
	test -x $(PYTHON) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e '.[dev]'
	touch $(INSTALLED)

lock: ## Rewrite constraints.txt from .venv (after installing other versions there on purpose)
	test -x $(PYTHON)
	{ echo '# Exact versions for `make install` (pip install -c constraints.txt -e .[dev]); `make lock` rewrites it.'; \
	  echo '# setuptools is in (torch requires it), pip is not; no local labels (+cpu): the index picks the build.'; \
	  $(PYTHON) -m pip freeze --all --exclude-editable --disable-pip-version-check \
	    | grep -v '^pip==' | sed -E 's/\+[A-Za-z0-9.]+$$//'; \
	} > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)

demo: install ## Make a small dataset offline: bundled photos + the tiny random-weight model
	HF_HUB_OFFLINE=1 $(PYTHON) run.py +experiment=demo
	@echo "The demo's AI images come from RANDOM weights (noise-like). For the real dataset run:"
	@echo "  ./download_indoor.sh && $(PYTHON) run.py generator=sd size=256"

test: install ## Run the test suite, in 2 processes (TEST_WORKERS=N; the slow end-to-end cases are left to test-all)
	$(PYTHON) -m pytest $(PARALLEL) -m "not gpu and not slow"

test-all: install ## Run every test CI runs: the suite and the slow end-to-end cases (not the GPU ones)
	$(PYTHON) -m pytest $(PARALLEL) -m "not gpu"

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean: ## Remove .venv, outputs and caches (not data/)
	rm -rf $(VENV) outputs multirun .pytest_cache .ruff_cache
