# simlab: `make demo` and `make test` are the two commands the README opens with.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_SCENARIO ?= experiments/checkout-canary.yaml
DEMO_OUT ?= reports/demo
DEMO_RUNS ?= 50

.PHONY: demo test setup system-deps bench clean examples

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,staging,scale,report,optimize]'
	touch $(STAMP)

setup: $(STAMP)

# Debian binaries the tests run for real (HAProxy, Prometheus; Chromium for the report's browser test).
system-deps:
	@missing=""; \
	for bin in haproxy prometheus chromium wrk; do command -v $$bin >/dev/null 2>&1 || missing="$$missing $$bin"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing from Debian's packages"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends$$missing >/dev/null; \
	  else \
	    echo "simlab needs$$missing: run 'sudo apt-get install$$missing' (Debian/Ubuntu)"; exit 1; \
	  fi; \
	fi

demo: setup
	$(VENV)/bin/simlab compare $(DEMO_SCENARIO) --runs $(DEMO_RUNS) --engine fluid --out $(DEMO_OUT) --report
	@echo "demo output: $(DEMO_OUT)/ (compare.csv, runs.parquet) and the report $(DEMO_OUT)/report.html"

# Two passes, each on two pytest-xdist workers with whole files per worker (a module's fixtures are built
# once): the CPU-bound tests outside tests/staging, then the staging tests, which mostly wait on real
# processes (each worker has its own shared staging fleet; stagings take free ports). Both run even when the
# first fails; make fails if either does.
test: setup system-deps
	@status=0; \
	$(PY) -m pytest -q -n 2 --dist loadfile --ignore=tests/staging --durations=15 || status=$$?; \
	$(PY) -m pytest -q -n 2 --dist loadfile tests/staging --durations=10 || status=$$?; \
	exit $$status

# The committed example results and reports in reports/examples/ (README, reports/README.md): rerun after
# a change to an engine or the reports; tests/test_examples.py fails while the committed ones are stale.
EXAMPLES ?= reports/examples
examples: setup
	rm -rf $(EXAMPLES)/checkout-canary $(EXAMPLES)/demo
	$(VENV)/bin/simlab run $(DEMO_SCENARIO) --out $(EXAMPLES)/checkout-canary
	$(VENV)/bin/simlab report $(EXAMPLES)/checkout-canary --out-root $(EXAMPLES)
	$(VENV)/bin/simlab compare $(DEMO_SCENARIO) --runs $(DEMO_RUNS) --engine fluid --out $(EXAMPLES)/demo --quiet
	$(VENV)/bin/simlab report $(EXAMPLES)/demo --out-root $(EXAMPLES)

# Recorded figures (README, docs/fluid-engine.md); not part of the test suite.
bench: setup
	$(PY) benchmarks/request_engine.py --seconds 60 --repeat 5
	$(PY) benchmarks/request_scaling.py --requests 300000 --rounds 3
	$(PY) benchmarks/request_memory.py --hours 1 24
	$(PY) benchmarks/fluid_engine.py --minutes 8 --seeds 2
	$(PY) benchmarks/reference_monte_carlo.py
	$(PY) benchmarks/fluid_scale.py
	$(PY) benchmarks/monte_carlo_scale.py
	$(PY) benchmarks/dask_scaling.py --runs 32
	$(PY) benchmarks/fidelity.py
	$(PY) benchmarks/low_rate.py
	$(PY) benchmarks/analysis_quality.py
	$(PY) benchmarks/optimize.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
