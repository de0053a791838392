# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DEMO := demo
DEMO_CUSTOMERS ?= 2000

FRONTEND := appliance/web/frontend
VENDOR := appliance/web/static/vendor

.PHONY: demo test venv assets bundle clean

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

# The console's front-end libraries, from the npm registry at build time (the committed lock file pins them);
# the appliance serves them itself, never from a CDN.
$(VENDOR)/echarts.min.js: $(FRONTEND)/package-lock.json
	@command -v npm >/dev/null || { echo "needs npm (apt-get install npm) to build the console's assets"; exit 1; }
	cd $(FRONTEND) && npm ci --no-audit --no-fund --silent
	mkdir -p $(VENDOR)
	cp $(FRONTEND)/node_modules/echarts/dist/echarts.min.js $(FRONTEND)/node_modules/echarts/LICENSE $(VENDOR)/
	touch $@

assets: $(VENDOR)/echarts.min.js

# Headless Chromium and CJK fonts for the browser tests (Debian's packages; Playwright drives /usr/bin/chromium).
BROWSER := /usr/bin/chromium
$(BROWSER):
	apt-get install -y -q chromium fonts-noto-cjk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium fonts-noto-cjk >/dev/null; }

# Generates demo data, creates a demo home (key file kept beside it, outside the home) and runs the pipeline.
demo: $(VENV)/.installed-runtime assets
	$(PY) -m appliance demo --dir $(DEMO) --customers $(DEMO_CUSTOMERS)

test: $(VENV)/.installed-test assets $(BROWSER)
	@fc-list :lang=zh | grep -q . || apt-get install -y -q fonts-noto-cjk >/dev/null
	@# A real PostgreSQL server for the database-pull tests (they start their own cluster on a socket).
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || apt-get install -y -q postgresql >/dev/null \
		|| { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
	@# systemd-analyze checks the packaged units.
	@command -v systemd-analyze >/dev/null || apt-get install -y -q systemd >/dev/null
	$(PY) -m pytest -q

# The offline install bundle for an air-gapped box (dist/insight-appliance-<version>.tar.gz).
bundle: assets
	PYTHON=$(PYTHON) packaging/build-offline-bundle.sh dist

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache $(VENDOR) $(FRONTEND)/node_modules
