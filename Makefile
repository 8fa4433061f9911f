# One command each for test, lint, bench: the same ones CI runs.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: test lint bench install screenshots
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

test: install
	# Two test processes: most tests wait on real consumers, sleeps and minute boundaries.
	$(PY) -m pytest -n 2 --dist worksteal
	$(VENV)/bin/ruff check .

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m pip install -q --no-deps arq
	$(PY) benchmarks/run.py

# Every status page at 390 px and 1280 px, light and dark, into screenshots/ (not committed);
# the README's picture (docs/screenshot-overview.png) is refreshed too.
screenshots: install
	$(PY) scripts/screenshots.py --out screenshots --readme
