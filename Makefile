# mall: the two everyday commands are `make run` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test lint deps deps-dev

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# mysqlclient is only installed when DATABASE_URL points at MySQL/MariaDB (it needs libmariadb-dev).
deps: $(PY)
	$(PIP) install -q -r requirements.txt $(if $(findstring mysql,$(DATABASE_URL)),-r requirements-mysql.txt)

deps-dev: $(PY)
	$(PIP) install -q -r requirements-dev.txt $(if $(findstring mysql,$(DATABASE_URL)),-r requirements-mysql.txt)

# Web server and django-q2 worker together, on an empty database seeded with demo data (scripts/run).
run:
	@scripts/run

# The test tools are installed once, again only when a requirements file changes (a stamp per flavour).
DEV_STAMP := $(VENV)/.mall-dev-deps$(if $(findstring mysql,$(DATABASE_URL)),-mysql).stamp
$(DEV_STAMP): requirements.txt requirements-dev.txt requirements-mysql.txt | $(PY)
	$(MAKE) --no-print-directory deps-dev
	@touch $@

# Prerequisites (redis-server, Chromium, MariaDB when DATABASE_URL names it) are checked first, in one message.
test:
	@$(PYTHON) scripts/check_test_prereqs.py $(if $(findstring not slow,$(PYTEST_ARGS)),--no-slow)
	@$(MAKE) --no-print-directory $(DEV_STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Curated mutation check (slow; README "## Mutation testing"). MariaDB mutants need MUTANTS_MARIADB_URL or a
# mysql:// DATABASE_URL. Pass mutant names or options with MUTANTS_ARGS="cart-line-lock --database mariadb".
.PHONY: mutants
mutants:
	$(PY) scripts/mutants.py $(MUTANTS_ARGS)
