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

# Two test processes for most tests (they wait on real consumers and sleeps), and beside
# them a third for the few marked `clock`, which only wait on minute boundaries or a held
# lock: they need almost no CPU, so they need not hold up one of the two.
test: install
	@$(PY) -m pytest -m clock > .pytest-clock.log 2>&1 & clock=$$!; \
	$(PY) -m pytest -n 2 --dist worksteal -m "not clock"; rest=$$?; \
	wait $$clock; waited=$$?; \
	echo "== the tests marked clock, run beside the others =="; cat .pytest-clock.log; \
	test $$rest -eq 0 && test $$waited -eq 0
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
