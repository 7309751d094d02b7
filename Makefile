# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= .demo-data

.PHONY: demo test lint bench reliability clean

# (Re)install whenever pyproject.toml changed since the last install; the demo needs only what runs.
$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/anxin demo --data $(DATA)

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2 --dist loadfile --cov --cov-report=term:skip-covered  # two workers, a test file each (2 cores)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

# The server under abuse and faults (docs/reliability.md): about 15 minutes on 2 cores; root for the disk-full case.
reliability: $(VENV)/.installed-test
	$(BIN)/python -m tests.reliability

clean:
	rm -rf $(VENV) $(DATA) $(DATA).chain-key* .pytest_cache .mypy_cache .ruff_cache
