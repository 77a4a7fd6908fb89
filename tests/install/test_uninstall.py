"""Uninstall keeps the data; --drop-data removes it."""

from __future__ import annotations

import pytest

from tests.install.conftest import Host

# Tests sharing one install must run on one xdist worker (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("install-uninstall")

MODULE_FILES = ("addon/amocrm_event", "addon/billmgr_amocrm", "etc/xml/billmgr_mod_amocrm.xml", "lib/amocrm")


def test_uninstall_keeps_data_and_drop_data_removes_it(bare_host: Host) -> None:
    host = bare_host
    host.install()
    (host.etc / "access_token").write_text("token-kept\n")
    host.sql("INSERT INTO amocrm_item2lead (billmgr_id, amocrm_id) VALUES (5, 500)")
    schedule = list(host.cron_dir.iterdir())

    proc = host.uninstall()

    assert "kept" in proc.stdout
    for rel in MODULE_FILES:
        assert not (host.root / rel).exists() and not (host.root / rel).is_symlink(), rel
    assert list(host.cron_dir.iterdir()) == []
    assert (host.etc / "access_token").read_text() == "token-kept\n"
    assert host.sql("SELECT amocrm_id FROM amocrm_item2lead WHERE billmgr_id = 5") == [(500,)]
    assert host.mgrctl_calls() == ["-m billmgr exit", "-m billmgr exit"]
    assert (host.root / "sbin" / "mgrctl").exists()  # BILLmanager's own files are untouched

    host.install()  # a reinstall finds everything where it was
    assert (host.etc / "access_token").read_text() == "token-kept\n"
    assert list(host.cron_dir.iterdir()) == schedule

    host.uninstall("--drop-data")

    assert not host.etc.exists()
    assert [t for t in host.tables() if t.startswith("amocrm_")] == []
    assert not (host.root / "lib" / "amocrm").exists()


def test_drop_data_without_uninstall_is_refused(bare_host: Host) -> None:
    proc = bare_host.install("--drop-data", check=False)
    assert proc.returncode == 2
    assert "--drop-data only goes with --uninstall" in proc.stderr
