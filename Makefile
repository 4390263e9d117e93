# tealedger: one entry point. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BVENV := .venv-brownie
SVENV := .venv-slither
STAMP := .make
SOLC_VERSION := 0.8.37
SOLC_DIR := $(CURDIR)/.solc

export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export SOLCX_BINARY_PATH := $(SOLC_DIR)

.PHONY: install test test-app test-brownie demo bench lint slither fmt clean node-stop

install: $(STAMP)/venv $(STAMP)/npm $(SOLC_DIR)/solc-v$(SOLC_VERSION) $(STAMP)/brownie $(STAMP)/slither $(STAMP)/chromium

$(STAMP)/node-ok:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "error: Node.js 20+ and npm are required for the Solidity toolchain." >&2; \
	  echo "       install them (Debian: apt-get install -y nodejs npm) and run make again." >&2; exit 1; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || { \
	  echo "error: Node.js $$(node --version) is too old; tealedger needs Node.js 20 or newer." >&2; exit 1; }
	@mkdir -p $(STAMP) && touch $@

$(STAMP)/venv: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@mkdir -p $(STAMP) && touch $@

$(STAMP)/npm: package.json package-lock.json | $(STAMP)/node-ok
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMP) && touch $@

# py-solc-x (and brownie) find compilers as `solc-v<version>` in SOLCX_BINARY_PATH: a Node shim
# over the npm compiler stands in for a native solc, so nothing is downloaded.
$(SOLC_DIR)/solc-v$(SOLC_VERSION): chain/solc_shim.js | $(STAMP)/npm
	@mkdir -p $(SOLC_DIR)
	ln -sf $(CURDIR)/chain/solc_shim.js $@
	@chmod +x chain/solc_shim.js

# Browser tests drive Debian's Chromium through playwright (never a browser download).
$(STAMP)/chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium fonts-wqy-zenhei >/dev/null; } || { \
	  echo "error: Chromium is needed for the browser tests: apt-get install chromium" >&2; exit 1; }
	@mkdir -p $(STAMP) && touch $@

# brownie pins old web3/hypothesis/pytest: it gets its own environment over the same project.
$(STAMP)/brownie: constraints-brownie.txt | $(STAMP)/npm
	@test -x $(BVENV)/bin/python || $(PYTHON) -m venv $(BVENV)
	$(BVENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints-brownie.txt eth-brownie==1.22.2
	$(BVENV)/bin/python scripts/brownie_networks.py
	@mkdir -p $(STAMP) && touch $@

# slither-analyzer brings solc-select, whose `solc` would shadow the offline shim on .venv/bin's
# PATH and download compilers, and its web3/eth-* pins move on their own: a separate environment.
$(STAMP)/slither: constraints-slither.txt
	@test -x $(SVENV)/bin/python || $(PYTHON) -m venv $(SVENV)
	$(SVENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints-slither.txt slither-analyzer==0.11.6
	@mkdir -p $(STAMP) && touch $@

test: install
	$(MAKE) --no-print-directory lint test-app test-brownie

test-app:
	$(PY) -m pytest

test-brownie:
	$(BVENV)/bin/python scripts/brownie_networks.py --free-port
	$(BVENV)/bin/brownie compile
	$(BVENV)/bin/brownie test tests/brownie --network tealedger-anvil -W ignore::FutureWarning
	$(BVENV)/bin/brownie test tests/brownie --network tealedger-ganache -W ignore::FutureWarning

lint:
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(MAKE) --no-print-directory slither

# Static analysis of contracts/: fails on any High/Medium finding not in slither-triage.json.
slither: $(STAMP)/slither $(STAMP)/npm
	$(PYTHON) scripts/slither_gate.py --save-json reports/slither.json

fmt:
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

demo: install
	$(PY) -m tealedger.cli demo

bench: install
	$(PY) -m bench

node-stop:
	-$(PY) -m tealedger.cli node stop

clean:
	rm -rf $(STAMP) build .pytest_cache .ruff_cache
