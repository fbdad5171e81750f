# The two entry points of the README. Each creates the virtualenv when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= config/config.yaml
CORES ?= all

.PHONY: demo test dryrun clean-venv

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip uv
	$(VENV)/bin/uv pip install --python $(PY) -e ".[tfhub,test]"
	bash scripts/ensure-browser.sh
	touch $@

demo: $(VENV)/.installed
	PATH="$(abspath $(VENV))/bin:$$PATH" snakemake --profile workflow/profiles/default --configfile $(CONFIG) --cores $(CORES)

test: $(VENV)/.installed
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

dryrun: $(VENV)/.installed
	for c in config/config.yaml config/sample.yaml config/paper.yaml; do \
	  PATH="$(abspath $(VENV))/bin:$$PATH" snakemake -n --quiet rules --configfile $$c || exit 1; done

clean-venv:
	rm -rf $(VENV)
