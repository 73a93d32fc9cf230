# agentgw — newcomer commands: `make run`, `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

## run: create .venv, install, serve the shipped catalog on :8080 against the built-in demo provider
run: $(STAMP)
	$(BIN)/agentgw serve

## lint: ruff on the package, tests and bench
lint: $(STAMP)
	$(BIN)/ruff check agentgw tests $(wildcard bench)
	$(BIN)/ruff format --check agentgw tests $(wildcard bench)

## typecheck: mypy --strict on the package
typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

## test: lint, type check and the whole suite
test: lint typecheck pytest

## bench: the gateway against a 1:1 SSE relay on loopback (writes bench/results/latest.json)
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
