# Quick start: `make demo` then `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DATA ?= demo-data

.PHONY: venv demo test test-fast bench notebook clean-venv

# (re-installed when the C scanner changes: the install compiles it, see hatch_build.py)
$(BIN)/mailhygiene: pyproject.toml hatch_build.py pipeline/ingest/native/postfix_scan.c pipeline/ingest/native/event_ids_x4.h
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/mailhygiene

## demo: ingest sample_logs/, run the nightly clean job, print where the CSV and report went
demo: venv
	rm -rf $(DEMO_DATA)
	$(BIN)/mailhygiene --config sample_logs/demo.toml --data-dir $(DEMO_DATA) --init-data-dir clean

## test: the whole test suite (what CI runs), one worker per core (pytest-xdist), each test file
## on one worker (module fixtures such as the lake's two nodes are built once)
test: venv
	$(BIN)/python -m pytest -q -n auto --dist loadfile

## test-fast: everything but the tests marked slow (real MTAs, kill loops, big logs, browser, wheel build); ~2.5 min
test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow" -n auto --dist loadfile

bench: venv
	$(BIN)/python bench/run_all.py

## notebook: open the exploration notebook in JupyterLab (as root too: Jupyter refuses root without --allow-root)
notebook: venv
	$(BIN)/pip install --quiet -e '.[notebook]'
	MAILHYGIENE_CONFIG=$(abspath sample_logs/demo.toml) MAILHYGIENE_DATA_DIR=$(abspath $(DEMO_DATA)) $(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/explore_bounces.ipynb

clean-venv:
	rm -rf $(VENV)
