# The entry points of the README. Each creates the virtualenv when it is missing and installs it
# from the hashed lock file, so two installs get the same versions of every package.
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= config/config.yaml
CORES ?= all
LOCK := requirements.lock
UV_VERSION := 0.13.9
# The extras the lock covers (the README's test command and the TF Hub text-encoder backend).
LOCK_EXTRAS := --extra tfhub --extra test

.PHONY: demo test lint dryrun lock clean-venv

$(VENV)/bin/uv:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q "uv==$(UV_VERSION)"

$(VENV)/.installed: pyproject.toml $(LOCK) $(VENV)/bin/uv
	$(VENV)/bin/uv pip install --python $(PY) --require-hashes -r $(LOCK)
	$(VENV)/bin/uv pip install --python $(PY) --no-deps -e .
	bash scripts/ensure-browser.sh
	touch $@

demo: $(VENV)/.installed
	PATH="$(abspath $(VENV))/bin:$$PATH" snakemake --profile workflow/profiles/default --configfile $(CONFIG) --cores $(CORES)

test: $(VENV)/.installed
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

# ruff (rules and line length: [tool.ruff] in pyproject.toml) and snakemake --lint (the lints kept
# are explained in scripts/lint-workflow.py).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks scripts
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) scripts/lint-workflow.py

dryrun: $(VENV)/.installed
	for c in config/config.yaml config/demo-full.yaml config/sample.yaml config/paper.yaml; do \
	  PATH="$(abspath $(VENV))/bin:$$PATH" snakemake -n --quiet rules --configfile $$c || exit 1; done

# After changing dependencies in pyproject.toml: re-resolve every pinned version (with hashes) for
# Linux x86-64 and Python 3.11, then `make test` reinstalls from it. Needs the package index.
lock: $(VENV)/bin/uv
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_EXTRAS) --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --quiet -o $(LOCK)

clean-venv:
	rm -rf $(VENV)
