# Everything a person or CI needs; each target installs what it needs into .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: install test test-corpus check lint typecheck format demo demo-reset bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# Real-world flows from ../shared/corpus (not in a fresh clone, so not part of `make test`).
test-corpus: $(STAMP)
	$(BIN)/python -m pytest tests/shared_corpus -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The user's page demo: the counter flow, three runs, printing 1, 2, 3 - every time: the demo
# has its own store (DEMO_STORE) and forgets the counter before the first run.
DEMO_STORE ?= file://./.direktiv-demo
demo: $(STAMP)
	@$(BIN)/direktiv-sdk vars clear --workflow /counter.yaml --store '$(DEMO_STORE)' --create \
		2>/dev/null || { echo "cannot reset the demo store $(DEMO_STORE)" >&2; exit 1; }
	@for run in 1 2 3; do \
		$(BIN)/direktiv-sdk run examples/counter.yaml --store '$(DEMO_STORE)' \
			| $(BIN)/python -c 'import json, sys; print(json.load(sys.stdin)["var"]["x"])' \
			|| exit 1; \
	done

demo-reset:
	rm -rf .direktiv .direktiv-demo

bench: $(STAMP)
	$(BIN)/python -m bench.store
	$(BIN)/python -m bench.jx
	$(BIN)/python -m bench.interpreter
	$(BIN)/python -m bench.harness
	$(BIN)/python -m bench.events
	$(BIN)/python -m bench.cli

clean:
	rm -rf $(VENV) .direktiv .direktiv-demo .pytest_cache .mypy_cache .ruff_cache
