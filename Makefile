# make run: start the broker with nakadi.toml; make test: the whole suite;
# make bench: the benchmarks. Each creates .venv and installs into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/nakadi serve --config nakadi.toml

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/storage_bench.py $(BENCH_ARGS)
	$(BIN)/python bench/publish_bench.py $(BENCH_ARGS)
	$(BIN)/python bench/stream_bench.py $(BENCH_ARGS)
	$(BIN)/python bench/subscription_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
