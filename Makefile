# Two commands a newcomer needs: `make demo` and `make test`. Everything else is plumbing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint typecheck demo clean system-deps

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || scripts/ensure-debian-packages python3-venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests use: influxd (storage), victoria-metrics (a real /api/v2/write peer),
# prometheus (scrapes the exporter; promtool checks metrics and rules), prometheus-alertmanager (receives our
# alerts) and docker-compose (validates docker-compose.yml; no containers run).
system-deps:
	@scripts/ensure-debian-packages influxdb victoria-metrics prometheus prometheus-alertmanager docker-compose

test: system-deps venv
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
