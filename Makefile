# Two commands a newcomer needs: `make demo` and `make test`. Everything else is plumbing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint typecheck demo clean system-deps

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests and the demo start: influxd (storage) and victoria-metrics (a real /api/v2/write peer).
system-deps:
	@scripts/ensure-debian-packages influxdb victoria-metrics

test: venv system-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

demo: venv
	@scripts/ensure-debian-packages influxdb
	$(BIN)/python -m simulator.demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo
