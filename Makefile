# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DEMO := demo
DEMO_CUSTOMERS ?= 2000

.PHONY: demo test venv clean

$(VENV)/.installed-runtime: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (apt-get install python3.11 python3.11-venv)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-runtime
	$(PY) -m pip install --quiet -e '.[test,train]'
	touch $@

venv: $(VENV)/.installed-runtime

# Generates demo data, creates a demo home (key file kept beside it, outside the home) and runs the pipeline.
demo: $(VENV)/.installed-runtime
	$(PY) -m appliance demo --dir $(DEMO) --customers $(DEMO_CUSTOMERS)

test: $(VENV)/.installed-test
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
