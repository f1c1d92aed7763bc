# Set-up and go. `make demo` runs the GSN demo suite on synthetic data (quick preset); `make test` runs the tests.
# Both create .venv on first use with the CPU build of torch (a plain `pip install torch` pulls a CUDA build).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lab clean-venv

$(BIN)/lab28: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/lab28

# The three settings at once: about a minute on two cores, each run one thread.
demo: $(BIN)/lab28
	$(BIN)/lab28 suite gsn --synth --preset quick --out runs --jobs 3
	@echo
	@echo "lab28 is installed in $(VENV)/. To use it: source $(VENV)/bin/activate   (then: lab28 --help)"
	@echo "or call it by its path: $(CURDIR)/$(BIN)/lab28 --help"

# Two test processes: the suite is mostly small single-threaded runs, and CI has two cores.
TEST_WORKERS ?= 2

test: $(BIN)/lab28
	$(BIN)/python -m pytest -n $(TEST_WORKERS) tests

# The full lab protocol on a GSN folder: make lab DATA=path/to/unpacked/archive
lab: $(BIN)/lab28
	$(BIN)/lab28 suite gsn --preset lab --data $(DATA) --out runs

clean-venv:
	rm -rf $(VENV)
