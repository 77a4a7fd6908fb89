"""Uninstall keeps the data; --drop-data removes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.foundation.exitstatus import ExitStatus
from billmgr_amocrm.store.migrations import MODULE_TABLES
from tests.install.conftest import REPO, Host
from tests.sandbox.dbconf import render_db_conf

# Tests sharing one install must run on one xdist worker (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("install-uninstall")

MODULE_FILES = ("addon/amocrm_event", "addon/billmgr_amocrm", "etc/xml/billmgr_mod_amocrm.xml",
                "lib/amocrm/venv", "lib/amocrm/releases", "lib/amocrm/install.json")


def test_uninstall_keeps_data_and_drop_data_removes_it(bare_host: Host) -> None:
    host = bare_host
    host.install()
    (host.etc / "access_token").write_text("token-kept\n")
    host.sql("INSERT INTO amocrm_item2lead (billmgr_id, amocrm_id) VALUES (5, 500)")
    schedule = list(host.cron_dir.iterdir())

    proc = host.uninstall()

    assert "kept" in proc.stdout
    purge = host.root / "lib" / "amocrm" / "amocrm-purge"
    assert f"to remove them: {purge} --yes" in proc.stdout
    for rel in MODULE_FILES:
        assert not (host.root / rel).exists() and not (host.root / rel).is_symlink(), rel
    # What stays behind to remove the data later: the command and the one copy it runs from.
    assert sorted(p.name for p in (host.root / "lib" / "amocrm").iterdir()) == ["amocrm-purge", "core"]
    assert len([p for p in (host.root / "lib" / "amocrm" / "core").iterdir() if not p.is_symlink()]) == 1
    assert list(host.cron_dir.iterdir()) == []
    assert (host.etc / "access_token").read_text() == "token-kept\n"
    assert host.sql("SELECT amocrm_id FROM amocrm_item2lead WHERE billmgr_id = 5") == [(500,)]
    # besides the restarts, the migrations ask mgrctl for the credentials (this stub has none to give)
    calls = host.mgrctl_calls()
    assert [c for c in calls if c != "-m billmgr -o xml paramlist"] == ["-m billmgr exit", "-m billmgr exit"]
    assert (host.root / "sbin" / "mgrctl").exists()  # BILLmanager's own files are untouched

    host.install()  # a reinstall finds everything where it was
    assert (host.etc / "access_token").read_text() == "token-kept\n"
    assert list(host.cron_dir.iterdir()) == schedule

    proc = host.uninstall("--drop-data")

    said = proc.stdout
    assert said.index("tables:      amocrm_account2contact") < said.index("dropped: amocrm_schema_version")
    assert not host.etc.exists() and not (host.root / "var" / "amocrm").exists()
    assert [t for t in host.tables() if t.startswith("amocrm_")] == []
    assert not (host.root / "lib" / "amocrm").exists()


def test_drop_data_without_uninstall_is_refused(bare_host: Host) -> None:
    proc = bare_host.install("--drop-data", check=False)
    assert proc.returncode == 2
    assert "--drop-data only goes with --uninstall" in proc.stderr


def test_drop_data_drops_exactly_the_module_tables(bare_host: Host) -> None:
    """Tables are dropped from the migrations' list, never by name: a foreign amocrm_ table stays."""
    host = bare_host
    host.install()
    assert sorted(t for t in host.tables() if t.startswith("amocrm_")) == sorted(MODULE_TABLES)
    host.sql("CREATE TABLE amocrm_something_else (id INT NOT NULL PRIMARY KEY, note VARCHAR(20))")
    host.sql("INSERT INTO amocrm_something_else VALUES (1, 'another module')")

    proc = host.uninstall("--drop-data")

    assert "dropped: " in proc.stdout
    assert host.tables() == ["amocrm_something_else"]
    assert host.sql("SELECT id, note FROM amocrm_something_else") == [(1, "another module")]


def test_drop_refuses_while_another_table_references_the_module(fresh_db: DbSettings,
                                                                 mgr5_root: Path) -> None:
    """Foreign-key checks stay on: a reference from outside the list stops the drop before it starts."""
    (mgr5_root / "etc" / "billmgr.conf.d" / "db.conf").write_text(render_db_conf(fresh_db))
    host = Host(root=mgr5_root, db=fresh_db, cron_dir=mgr5_root)

    def migrations(*args: str) -> subprocess.CompletedProcess:
        env = {"MGR5_ROOT": str(mgr5_root), "PYTHONPATH": str(REPO / "addon"), "PATH": "/usr/bin:/bin"}
        return subprocess.run([sys.executable, "-m", "billmgr_amocrm.store.migrations", *args],
                              capture_output=True, text=True, env=env, timeout=120, check=False)

    assert migrations().returncode == 0
    host.sql("CREATE TABLE amocrm_something_else (id INT NOT NULL PRIMARY KEY, lead INT NOT NULL, "
             "FOREIGN KEY (lead) REFERENCES amocrm_item2lead (id)) ENGINE=InnoDB")

    refused = migrations("--drop")

    assert refused.returncode == ExitStatus.ERROR
    assert "amocrm_something_else -> amocrm_item2lead" in refused.stderr
    assert "nothing was dropped" in refused.stderr
    assert sorted(host.tables()) == sorted([*MODULE_TABLES, "amocrm_something_else"])

    host.sql("DROP TABLE amocrm_something_else")
    dropped = migrations("--drop")
    assert dropped.returncode == ExitStatus.OK, dropped.stderr
    assert sorted(dropped.stdout.split()[1:]) == sorted(MODULE_TABLES)
    assert dropped.stdout.split()[1] == "amocrm_schema_version"  # first: never a version without tables
    assert host.tables() == []
    again = migrations("--drop")
    assert (again.returncode, again.stdout) == (ExitStatus.OK, "no module tables found\n")


def run_purge(host: Host, *args: str) -> subprocess.CompletedProcess:
    """R/lib/amocrm/amocrm-purge as an admin runs it: its own shebang, nothing of the work tree."""
    env = {"PATH": "/usr/bin:/bin"}
    return subprocess.run([str(host.root / "lib" / "amocrm" / "amocrm-purge"), *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


def test_the_purge_command_left_behind_says_what_it_removes_and_removes_it(bare_host: Host) -> None:
    host = bare_host
    host.install()
    refused = run_purge(host, "--yes")                     # the module is still installed
    assert refused.returncode == ExitStatus.ERROR
    assert "still installed" in refused.stderr
    host.uninstall()
    (host.etc / "refresh_token").write_text("kept-until-purged\n")

    told = run_purge(host)                                 # without --yes: only the list

    assert told.returncode == ExitStatus.OK, told.stderr
    assert "this would remove" in told.stdout and "nothing removed; run again with --yes" in told.stdout
    for line in (f"tables:      {', '.join(MODULE_TABLES)}", f"config:      {host.etc}",
                 f"state:       {host.root / 'var' / 'amocrm'}",
                 f"module:      {host.root / 'lib' / 'amocrm'}"):
        assert line in told.stdout, line
    assert (host.etc / "refresh_token").exists()
    assert sorted(t for t in host.tables() if t.startswith("amocrm_")) == sorted(MODULE_TABLES)

    done = run_purge(host, "--yes")

    assert done.returncode == ExitStatus.OK, done.stderr
    assert done.stdout.index(f"config:      {host.etc}") < done.stdout.index("dropped: ")
    assert sorted(done.stdout.split("dropped: ")[1].split("\n")[0].split()) == sorted(MODULE_TABLES)
    assert [t for t in host.tables() if t.startswith("amocrm_")] == []
    assert not host.etc.exists() and not (host.root / "var" / "amocrm").exists()
    assert not (host.root / "lib").exists()
    assert (host.root / "etc" / "billmgr.conf.d" / "db.conf").exists()   # BILLmanager's own files stay
