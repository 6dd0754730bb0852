# MovieVault: `make run` serves the app, `make lint` runs ruff and mypy, `make test` runs
# lint, then the whole suite.
# Both create (or reuse) .venv and install what they need into it.

PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test test-fast lint bench browser nginx localstack postgresql webkit firefox lambda-package clean

$(PY):
	$(PYTHON_SYSTEM) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install -e '.[test]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(VENV)/bin/movievault serve

browser:
	@scripts/install-chromium

nginx:
	@scripts/install-nginx

localstack:
	@scripts/install-localstack

webkit:
	@scripts/install-webkit

firefox:
	@scripts/install-firefox

postgresql:
	@scripts/install-postgresql

# Two workers: browser and server tests spend much of their time waiting. Tests that share
# one heavy server are grouped onto one worker (`xdist_group`).
test: lint browser nginx localstack postgresql webkit firefox
	$(PY) -m pytest -n 2 --dist loadgroup

test-fast: $(VENV)/.installed-test
	$(PY) -m pytest -n 2 --dist loadgroup -m "not e2e and not engines"

lint: $(VENV)/.installed-test
	$(PY) -m ruff check movievault tests bench wsgi.py
	$(PY) -m mypy movievault

# The AWS Lambda deployment zip (dist/movievault-lambda-x86_64.zip; ARCH=arm64 for Graviton):
# the app and its dependencies for the python3.12 runtime, see docs/DEPLOY.md.
ARCH ?= x86_64
lambda-package: $(VENV)/.installed-run
	$(PY) scripts/build-lambda-package --arch $(ARCH)

bench: $(VENV)/.installed-test browser
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .localstack-venv .pytest_cache
