# The two commands of the README's Quickstart. Each creates .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint test-floor clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[plot]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(BIN)/unmetneed demo

# The lint, format and type checks run first: a change that breaks them fails `make test`;
# the immutability tests also run on the oldest pandas the package allows (test-floor).
test: lint test-floor
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src
	$(BIN)/mypy src

# The immutability tests (designs, results and fits copy what they are given and hand out copies
# or read-only arrays) on the lowest pandas pyproject.toml allows, in a second venv: pandas 2.x
# without copy-on-write is where a shallow copy would let an edit through. pandas 2.1 is built
# against numpy 1.x, so numpy is pinned at the package's floor too; the rest resolve to the
# newest releases that accept these pins.
FLOOR_VENV := .venv-floor
FLOOR_PINS := pandas==2.1.4 numpy==1.26.4
IMMUTABILITY_TESTS := \
	tests/design/test_immutability.py \
	tests/design/test_bad_input.py::test_design_is_immutable \
	tests/design/test_replicate.py::test_replicate_weights_are_read_only \
	tests/weighting/test_result_immutable.py \
	tests/mrp/test_fit_immutable.py \
	tests/sae/test_fit_immutable.py \
	tests/sae/test_fay_herriot_behaviour.py::test_fit_is_immutable \
	tests/estimates/test_care_homes.py::test_result_is_frozen_and_to_frame_is_a_copy

$(FLOOR_VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FLOOR_VENV)/bin/python -m pip install --quiet $(FLOOR_PINS) -e . "pytest>=8" "hypothesis>=6.100"
	touch $@

test-floor: $(FLOOR_VENV)/.installed
	$(FLOOR_VENV)/bin/python -c "import pandas, numpy; print('floor: pandas', pandas.__version__, 'numpy', numpy.__version__)"
	$(FLOOR_VENV)/bin/python -m pytest -p no:cacheprovider $(IMMUTABILITY_TESTS)

clean:
	rm -rf $(VENV) $(FLOOR_VENV) build dist .pytest_cache .hypothesis
