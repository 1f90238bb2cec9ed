# Two commands for a new user: `make run` and `make test`.
# Both create .venv on first use; torch is installed first, pinned to the CPU
# build, so pip never resolves an unpinned torch to a multi-GB CUDA build.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := sample-data
WORKSPACE := segscope-workspace

.PHONY: install run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Generate the bundled sample (once), segment it, and show the segments.
run: $(STAMP)
	@test -f $(SAMPLE)/truth.csv || $(BIN)/segscope sample --out $(SAMPLE) --seed 7
	$(BIN)/segscope segment --data $(SAMPLE) --workspace $(WORKSPACE) --seed 7

test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'  # BERTopic, the peer bench/segments.py runs beside segscope
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(WORKSPACE) $(SAMPLE) .pytest_cache
