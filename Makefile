# billmgr-amocrm developer entry points. `make demo` and `make test` are the two
# commands a newcomer needs; each sets up what it uses (virtualenv, dependencies,
# a running MariaDB).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
MGR5_ROOT ?= /usr/local/mgr5
PYTEST_WORKERS ?= 2

.PHONY: all venv mariadb test test-py39 test-fast lint typecheck demo bench sandbox emulator \
        install uninstall package proof lock clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

mariadb:
	@tests/tools/ensure-mariadb

test: venv mariadb
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q
	PYTEST_WORKERS=$(PYTEST_WORKERS) tests/tools/test-on-python39

# the module's own suites on Python 3.9 (AlmaLinux 8/9 hosts); make test runs it too
test-py39: mariadb
	PYTEST_WORKERS=$(PYTEST_WORKERS) tests/tools/test-on-python39

test-fast: venv
	$(PY) -m pytest -q -x -m 'not slow'

# lint: ruff, mypy, and vermin: addon/, sbin/ and .packaging/ must run on Python 3.9
lint: venv
	$(VENV)/bin/ruff check addon tests sbin/amocrm sbin/amocrm_task sbin/amocrm-install .packaging/build \
	    .packaging/make-lock .packaging/targets.py
	$(VENV)/bin/mypy
	$(VENV)/bin/vermin --target=3.9- --violations --no-tips addon sbin .packaging

typecheck: lint

demo: venv mariadb
	$(PY) -m tests.demo

bench: venv mariadb
	$(PY) -m tests.bench $(ARGS)

proof: venv mariadb
	$(PY) -m pytest -q tests/proof --full-scale

sandbox: venv mariadb
	$(PY) -m tests.sandbox $(ARGS)

emulator: venv
	$(PY) -m tests.amocrm_emulator $(ARGS)

install:  # dependencies from the package index, checked against the lock's hashes
	$(PYTHON) sbin/amocrm-install --root '$(MGR5_ROOT)'

uninstall:
	$(PYTHON) sbin/amocrm-install --root '$(MGR5_ROOT)' --uninstall $(if $(DROP_DATA),--drop-data,)

package:  # wheels from the index into .packaging/wheelhouse/ (a cache), hash-checked, then shipped
	$(PYTHON) .packaging/build

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

lock: venv
	$(PY) .packaging/make-lock
