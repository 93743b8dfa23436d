# supercluster — set-up and the jobs everyone runs. Each target creates .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-refit check bench calibrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/supercluster plan scenarios/memphis.yaml

# The suite on every core (pytest-xdist), all but the one test that refits the shipped calibration from neutral
# values (100 s alone); CI (.ci/run) runs that one too, with `make test-refit`.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto -m "not refit"

test-refit: $(STAMP)
	$(BIN)/python -m pytest -m refit

check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Refit the shipped global knobs on the calibration set from their neutral values (rewrites catalog/calibration.yaml,
# with the leave-one-source-out errors and the residuals plan's intervals are drawn from).
calibrate: $(STAMP)
	$(BIN)/supercluster calibrate src/supercluster/validate/calibration.yaml --neutral \
		-o src/supercluster/catalog/calibration.yaml

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_plan.py
	$(BIN)/python benchmarks/bench_contention.py
	$(BIN)/python benchmarks/bench_web.py --requests 2000 --concurrency 32
	$(BIN)/python benchmarks/bench_sim.py
	$(BIN)/python benchmarks/bench_design.py --workers 2

clean:
	rm -rf $(VENV) build src/*.egg-info
