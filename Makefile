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
	@scripts/run

# The test tools are installed once, again only when a lock changes (a stamp per flavour).
DEV_STAMP := $(VENV)/.mall-dev-deps$(if $(findstring mysql,$(DATABASE_URL)),-mysql).stamp
$(DEV_STAMP): requirements.lock requirements-perf.lock requirements-dev.lock requirements-mysql.lock | $(PY)
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

# The performance lab (perf/; docs/PERFORMANCE.md): the bench's smoke run. Full run: .venv/bin/python -m perf bench
.PHONY: bench
bench: $(DEV_STAMP)
	$(PY) -m perf bench --quick
