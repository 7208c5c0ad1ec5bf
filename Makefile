# make run: start the broker with nakadi.toml; make test: the whole suite;
# make bench: the benchmarks, their table in bench/results.md; make reliability [LONG=1]: the reliability
# suites alone (LONG=1: their long sizes). Each creates .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench reliability clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/nakadi serve --config nakadi.toml

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

BENCHES := storage publish stream subscription filter redis startup
ROWS := .bench-results.jsonl

bench: $(STAMP)
	rm -f $(ROWS)
	for name in $(BENCHES); do \
	  BENCH_RESULTS=$(ROWS) $(BIN)/python bench/$${name}_bench.py $(BENCH_ARGS) || exit 1; \
	done
	$(BIN)/python bench/results.py $(ROWS) bench/results.md
	rm -f $(ROWS)

reliability: $(STAMP)
	RELIABILITY_LONG=$(if $(LONG),1,0) $(BIN)/python -m pytest tests/reliability tests/e2e/test_bad_input.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
