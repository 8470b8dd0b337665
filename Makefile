# gameworld: every target creates .venv if needed and is safe to run twice.
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
# On a GPU machine: make install TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>"
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install play web test lint

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

$(STAMP): $(PY) pyproject.toml $(CONSTRAINTS)
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -c $(CONSTRAINTS) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

play: $(STAMP)
	$(PY) -m app.play $(ARGS)

web: $(STAMP)
	$(PY) -m app.web $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q $(PYTEST_ARGS)
