# mall: the two everyday commands are `make run` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test lint deps deps-dev lock lock-upgrade lock-check

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Installs come from the locks (exact versions and hashes), generated from requirements*.txt by `make lock`.
# mysqlclient is only installed when DATABASE_URL points at MySQL/MariaDB (it needs libmariadb-dev).
MYSQL_LOCK = $(if $(findstring mysql,$(DATABASE_URL)),-r requirements-mysql.lock)

deps: $(PY)
	$(PIP) install -q -r requirements.lock $(MYSQL_LOCK)

deps-dev: $(PY)
	$(PIP) install -q -r requirements-dev.lock $(MYSQL_LOCK)

# After editing requirements*.txt: regenerate the locks (current pins kept where allowed); commit them.
lock: deps-dev
	scripts/lock

# Every package to the newest version requirements*.txt allow.
lock-upgrade: deps-dev
	scripts/lock --upgrade

# Fails when a lock is not what requirements*.txt give (CI).
lock-check: deps-dev
	scripts/lock --check

# Web server and django-q2 worker together, on an empty database seeded with demo data (scripts/run).
run:
	scripts/run

test: deps-dev
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: deps-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
