"""Fixtures for installer tests: real installs into temporary BILLmanager roots.

``installed_root`` (session-scoped) is ONE real install of the work tree into a temporary
root: private virtualenv, executables with rewritten shebangs, migrated tables in a fresh
database (db.conf points at it), a stub ``sbin/mgrctl`` that records its arguments, and the
worker's cron entry in a temporary cron dir.  Building a virtualenv takes seconds, so tests
share it; tests that change it leave it installed and working (an upgrade, a failed upgrade).
End-to-end tests that drive the INSTALLED copy (authorization, an event, the worker, the
bindings list) take this fixture and run ``host.root / "addon" / ...`` or ``host.sbin(...)``::

    def test_end_to_end(installed_root):
        run = run_addon(installed_root.addon("amocrm_event"), {...}, doc,
                        extra=installed_root.env())

Test modules carry ``pytestmark = pytest.mark.xdist_group(...)`` so that, with a working
``--dist loadgroup``, one xdist worker builds it once.  Every test is also correct when
each worker builds its own (no test depends on another's changes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pymysql
import pytest

from billmgr_amocrm.dbconf import DbSettings
from tests.fixtures.database import temporary_database
from tests.sandbox.dbconf import render_db_conf

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "sbin" / "amocrm-install"
MGRCTL_STUB = '#!/bin/sh\necho "$@" >> "$(dirname "$0")/../mgrctl.calls"\n'


@dataclass(frozen=True)
class Host:
    """A temporary BILLmanager root with its own database."""

    root: Path
    db: DbSettings
    cron_dir: Path
    wheelhouse: Optional[Path] = None  # offline dependency installs, as the packages do

    def addon(self, name: str) -> Path:
        return self.root / "addon" / name

    def sbin(self, name: str) -> Path:
        return self.root / "sbin" / name

    @property
    def venv_python(self) -> Path:
        return self.root / "lib" / "amocrm" / "venv" / "bin" / "python3"

    @property
    def etc(self) -> Path:
        return self.root / "etc" / "amocrm"

    def env(self) -> Dict[str, str]:
        return {"MGR5_ROOT": str(self.root)}

    def mgrctl_calls(self) -> List[str]:
        calls = self.root / "mgrctl.calls"
        return calls.read_text().splitlines() if calls.exists() else []

    def tables(self) -> List[str]:
        conn = pymysql.connect(host=self.db.host, port=self.db.port, user=self.db.user,
                               password=self.db.password, database=self.db.database)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW TABLES")
                return sorted(row[0] for row in cur.fetchall())
        finally:
            conn.close()

    def sql(self, statement: str, args: tuple = ()) -> list:
        conn = pymysql.connect(host=self.db.host, port=self.db.port, user=self.db.user,
                               password=self.db.password, database=self.db.database, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def install(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        offline = ["--wheelhouse", str(self.wheelhouse)] if self.wheelhouse else []
        return run_installer(self.root, "--cron-dir", str(self.cron_dir), *offline, *args, check=check)

    def uninstall(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_installer(self.root, "--uninstall", *args, check=check)


def run_installer(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run sbin/amocrm-install as an admin would (``make install`` uses python3 the same way)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MGR5_ROOT", "PYTHONPATH")}
    proc = subprocess.run([sys.executable, str(INSTALLER), "--root", str(root), *args],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"amocrm-install {' '.join(args)} exited {proc.returncode}:\n"
                    f"{proc.stdout}\n{proc.stderr}", pytrace=False)
    return proc


def make_host(base: Path, db: DbSettings, wheelhouse: Optional[Path] = None) -> Host:
    """A bare BILLmanager tree: db.conf, a recording mgrctl, nothing of the module."""
    root = base / "mgr5"
    for sub in ("etc/billmgr.conf.d", "etc/xml", "addon", "sbin", "var"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "billmgr.conf.d" / "db.conf").write_text(render_db_conf(db))
    mgrctl = root / "sbin" / "mgrctl"
    mgrctl.write_text(MGRCTL_STUB)
    mgrctl.chmod(0o755)
    cron_dir = base / "cron.d"
    cron_dir.mkdir()
    return Host(root=root, db=db, cron_dir=cron_dir, wheelhouse=wheelhouse)


@pytest.fixture(scope="session")
def install_db(db_server: DbSettings) -> Iterator[DbSettings]:
    with temporary_database(db_server) as settings:
        yield settings


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The wheels the packages ship (.packaging/wheelhouse/, filled from the index once per clone)."""
    proc = subprocess.run([sys.executable, str(REPO / ".packaging" / "build"), "--wheels"],
                          capture_output=True, text=True, timeout=1200, check=False)
    if proc.returncode != 0:
        pytest.fail(f"filling the wheel cache failed:\n{proc.stderr}", pytrace=False)
    return Path(proc.stdout.strip())


@pytest.fixture(scope="session")
def installed_root(tmp_path_factory: pytest.TempPathFactory, install_db: DbSettings,
                   wheelhouse: Path) -> Iterator[Host]:
    """The work tree installed once into a temporary root (see the module docstring).

    Dependencies come from the packages' wheelhouse (``--wheelhouse``): the same pinned,
    hash-checked wheels pip would fetch from the index, without the index.
    """
    host = make_host(tmp_path_factory.mktemp("installed"), install_db, wheelhouse)
    host.install()
    yield host
    run_installer(host.root, "--uninstall", "--drop-data", check=False)


@pytest.fixture
def bare_host(tmp_path: Path, db_server: DbSettings, wheelhouse: Path) -> Iterator[Host]:
    """A fresh root and database of its own, for install/uninstall scenarios."""
    with temporary_database(db_server) as db:
        yield make_host(tmp_path, db, wheelhouse)
