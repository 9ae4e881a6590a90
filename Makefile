# Everything a fresh machine needs is installed here, into ./.venv.
VENV ?= .venv
PY := $(VENV)/bin/python
SAMPLE := routeyard/demo/data/routerbench_0shot_subset.csv.gz

.PHONY: install test lint test-programs serve demo bench bench-gateway clean

install: $(VENV)/.installed

# torch goes in first, pinned, so nothing later can pull the CUDA build (architecture.md §9).
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

lint: install
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/ruff format --no-cache --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# Tests run a real redis-server (the usage log), headless Chromium (the dashboard) and promtool (the
# deploy/ Prometheus config), all Debian packages, installed here when missing.
test-programs:
	@command -v redis-server >/dev/null && command -v chromium >/dev/null && command -v promtool >/dev/null || \
	{ apt-get update -qq && apt-get install -y -qq redis-server chromium prometheus >/dev/null; }

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: lint test-programs
	$(VENV)/bin/pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# The embedded default gateway on http://127.0.0.1:8000/v1 (its KNN artifacts ship prebuilt, so it is ready in
# seconds; they are rebuilt by `python -m routeyard.demo.build_artifacts`).
serve: install
	$(VENV)/bin/routeyard serve

demo: install
	$(VENV)/bin/routeyard replay --data $(SAMPLE) --out replay-demo

bench: install
	$(PY) -m benchmarks.bench_replay

# Loopback load with unique prompts (no cache hits but the row labelled so): mock upstream, routeyard
# passthrough and KNN routing (~30-token and RouterBench-length prompts, 1 and 2 workers), streamed time to
# first token, LiteLLM proxy (installed on first use). Options: make bench-gateway ARGS="--seconds 5 --json x.json".
bench-gateway: install
	@command -v wrk >/dev/null || { echo "bench-gateway needs wrk: apt-get install -y wrk" >&2; exit 1; }
	$(PY) -m benchmarks.bench_gateway $(ARGS)

clean:
	rm -rf $(VENV) replay-demo .mypy_cache .pytest_cache .ruff_cache
