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
	scripts/run

test: deps-dev
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: deps-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Curated mutation check (slow; README "## Mutation testing"). MariaDB mutants need MUTANTS_MARIADB_URL or a
# mysql:// DATABASE_URL. Pass mutant names or options with MUTANTS_ARGS="cart-line-lock --database mariadb".
.PHONY: mutants
mutants:
	$(PY) scripts/mutants.py $(MUTANTS_ARGS)
