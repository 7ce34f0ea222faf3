# The two commands: `make demo` and `make test`. Everything else is a helper of theirs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
# The simulator's HTTPS port; empty: 8443 when free, else a free one (recorded in var/demo-environment.json).
SIMULATOR_PORT ?=

.PHONY: demo test lint venv venv-dev migrate clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip==24.3.1

$(VENV)/.runtime: requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

migrate: venv
	$(PY) manage.py migrate --noinput

## make demo [HOST=…] [PORT=…] [SIMULATOR_PORT=…]: install, migrate, seed the demo tenants, start everything,
## print where to log in. Every URL (PORTAL_BASE_URL, the demo tenants' Jamf Pro URL) follows these.
demo: venv
	$(PY) manage.py rundemo --host $(HOST) --port $(PORT) $(if $(SIMULATOR_PORT),--simulator-port $(SIMULATOR_PORT))

## make test: install the dev requirements and run the whole suite (honours DATABASE_URL).
test: venv-dev
	$(PY) -m pytest -q -p no:cacheprovider -n 2 $(PYTEST_ARGS)

lint: venv-dev
	$(VENV)/bin/ruff check .

clean:
	rm -rf var test-results
