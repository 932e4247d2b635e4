# Two entry points: `make demo` (train the intro experiment and classify it)
# and `make test`. Both create .venv if it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of torch first, from local disk; otherwise pip pulls a CUDA build.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[plots,io,test]"
	touch $(STAMP)

demo: $(STAMP)
	rm -rf out/intro.zarr
	$(BIN)/toyanalysis train --preset intro -o out/intro.zarr
	$(BIN)/toyanalysis classify out/intro.zarr

test: $(STAMP)
	bash tests/setup-browser.sh
	$(BIN)/ruff check toyanalysis cli tests benchmarks docs/notebooks datasets
	$(BIN)/ruff format --check toyanalysis cli tests benchmarks docs/notebooks datasets
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --doctest-modules toyanalysis tests

bench: $(STAMP)
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/classify_speed.py

clean:
	rm -rf $(VENV) out
