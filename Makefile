# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Where `make run` serves the dashboard and the fake cluster (the demo cluster `local`): set both
# to run two checkouts side by side.
HOST_PORT ?= 127.0.0.1:8000
FAKE_CLUSTER_PORT ?= 9100
STATIC_ROOT ?= var/static
# The docs site's configuration (tests/test_docs.py builds broken copies through it).
DOCS_CONFIG ?= mkdocs.yml

# `make run` is the production stack on one machine (gunicorn, workers, housekeeping), DEBUG off
# unless the environment says otherwise, with the devtools (fake cluster, demo users, the
# all-in-one runner) installed.
RUN_ENV := DEBUG=$${DEBUG:-false} TMS_DEVTOOLS=true
# Tests need a SECRET_KEY (DEBUG is off in tests) and the devtools, read no local .env, and run
# on TEST_DATABASE_URL when it is set.
TEST_ENV := SECRET_KEY=$${SECRET_KEY:-insecure-key-for-tests-only} ENV_FILE=/dev/null TMS_DEVTOOLS=true \
	$(if $(TEST_DATABASE_URL),DATABASE_URL=$(TEST_DATABASE_URL))

# collectstatic compresses every file (Brotli and gzip), which takes most of a start, so it runs
# only when something it reads is newer than its stamp: our static folder (its folders too, whose
# times change when a file is added or removed), htmx from npm, the installed packages' own files
# (the admin's, DRF's, the API docs'), and the settings that name them. It reads no local .env, so
# the files land where the stamp is: STATIC_ROOT, or var/static when unset.
STATIC_SOURCES := $(shell find static) node_modules/.installed $(VENV)/.runtime-installed \
	tmsdash/settings.py
STATIC_ENV := SECRET_KEY=$${SECRET_KEY:-insecure-key-for-collectstatic} ENV_FILE=/dev/null \
	STATIC_ROOT=$(STATIC_ROOT)

.PHONY: run test docs screenshots audit lint format clean

# Local settings kept between runs, so that manage.py commands work in this checkout without
# exporting anything: a generated SECRET_KEY, readable by this user only.
.env:
	umask 077 && $(PYTHON) -c "import secrets; print('SECRET_KEY=' + secrets.token_urlsafe(50))" > $@

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt requirements-docs.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

# The front-end files, pinned in package-lock.json: htmx, served as a static file, and axe-core
# for the browser tests. Nothing is fetched by a browser from the internet.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

$(STATIC_ROOT)/.collected: $(STATIC_SOURCES)
	$(STATIC_ENV) $(PY) manage.py collectstatic --no-input --verbosity 0
	touch $@

# The runner migrates (quietly: a failing migration still prints its error) and seeds the demo,
# so that the demo users' passwords and the address to sign in at are the last lines before the
# processes' logs.
run: .env $(VENV)/.runtime-installed node_modules/.installed $(STATIC_ROOT)/.collected
	$(RUN_ENV) $(PY) manage.py run_dashboard --migrate --seed-demo --addrport $(HOST_PORT) \
		--fake-cluster-port $(FAKE_CLUSTER_PORT)

test: .env $(VENV)/.dev-installed node_modules/.installed $(STATIC_ROOT)/.collected
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(TEST_ENV) $(PY) manage.py check
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(MAKE) --no-print-directory docs
	$(TEST_ENV) $(VENV)/bin/pytest $(PYTEST_ARGS)

# docs/ as a site in var/site/, strictly: a broken link or anchor, or a page left out of the
# nav, fails the build (mkdocs.yml says which warnings count). Never --quiet: it silences the
# warnings, and strict mode then passes whatever they were.
docs: $(VENV)/.dev-installed
	$(VENV)/bin/properdocs build --config-file $(DOCS_CONFIG)

# The docs' screenshots, taken from the real pages by the browser tour into docs/screenshots/.
# CI=true makes a missing Chromium fail the run instead of skipping the tour (and so leaving
# the old screenshots in place without a word).
screenshots: .env $(VENV)/.dev-installed node_modules/.installed $(STATIC_ROOT)/.collected
	UPDATE_SCREENSHOTS=1 CI=true $(TEST_ENV) $(VENV)/bin/pytest -p no:randomly -q tests/e2e/test_tour.py

# The installed Python packages (pip-audit --strict) and the npm packages (npm audit) checked
# against their known vulnerabilities. Not part of `make test`: it needs PyPI's JSON API and the
# npm registry's advisories on the network. Exit 1: a vulnerable package; exit 2, saying so: a
# vulnerability database could not be reached, so something was not audited.
audit: $(VENV)/.dev-installed node_modules/.installed
	$(PY) -m devtools.dependency_audit

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var node_modules .pytest_cache .ruff_cache
