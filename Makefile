# equinb: `make book` builds the executed HTML book, `make test` runs the test suite.
# Both create the virtual environment in .venv on first use; later calls reuse it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := equinb

PROFILE ?= cpu
SMOKE_BOOK ?= _build/smoke

.PHONY: all setup book check-book check-smoke-book test bench gpu-check sweep clean

all: test

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python 3 (equinb)"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build --all --warningiserror --keep-going . || { rm -rf _build/.doctrees; exit 1; }
	@echo "book: open _build/html/index.html"

# every page in headless Chromium at 1,280 px: too-wide elements, stderr/warnings/tracebacks, machine paths, raw
# math, shrunken images, timing noise (needs Chromium: apt-get install chromium)
check-book: $(STAMP)
	test -f _build/html/index.html || $(MAKE) book
	$(BIN)/python -m equinb.bookcheck _build/html --screenshots _build/screenshots

# the same check on the book built from chapters executed with the smoke profile (what CI runs; minutes)
check-smoke-book: $(STAMP)
	TRITON_INTERPRET=1 $(BIN)/python -m equinb.bookbuild --profile smoke --out $(SMOKE_BOOK)
	$(BIN)/python -m equinb.bookcheck $(SMOKE_BOOK)/src/_build/html --screenshots $(SMOKE_BOOK)/screenshots

sweep: $(STAMP)
	$(BIN)/python -m equinb sweep table1 --profile $(PROFILE)

test: $(STAMP)
	TRITON_INTERPRET=1 $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/sph_bench.py

gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf _build
