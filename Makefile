# kws: `make install` (once), `make demo` (the pipeline end to end, offline), `make test` (the suite).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
WHEELS  := $(wildcard /opt/wheels)
PIPOPTS := $(if $(WHEELS),--find-links $(WHEELS),)

.PHONY: install test test-slow demo lint firmware bench clean

install: $(STAMP)
	@bash scripts/install_debian.sh

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(PIPOPTS) -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

test: install
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: install
	$(BIN)/python -m pytest -m slow -q

demo: install
	$(BIN)/python -m kws demo --out demo_out

lint: install
	$(BIN)/ruff format --check kws tests bench && $(BIN)/ruff check kws tests bench

firmware:
	$(MAKE) -C firmware_stub test

clean:
	rm -rf $(VENV) demo_out firmware_stub/build .pytest_cache
