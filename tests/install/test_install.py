"""A real install into a temporary BILLmanager root, an upgrade, and a failed upgrade."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name

from billmgr_amocrm.foundation.exitstatus import ExitStatus
from billmgr_amocrm.foundation.locks import FileLock
from billmgr_amocrm.installer.lock import read_pins
from tests.harness import run_addon
from tests.install.conftest import INSTALLER, REPO, Host, make_host, run_installer

# Tests sharing one install must run on one xdist worker (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("install-session")

LOCK = REPO / ".packaging" / "requirements.lock"


def source_executables() -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for sub in ("addon", "sbin"):
        found[sub] = sorted(p.name for p in (REPO / sub).iterdir()
                            if p.is_file() and os.access(p, os.X_OK) and p.name != INSTALLER.name)
    return found


def host_python() -> str:
    """What the installer picks for the hook: /usr/bin/python3 when it is 3.9 or newer."""
    proc = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(sys.version_info >= (3, 9))"],
                          capture_output=True, text=True, check=False)
    assert proc.stdout.strip() == "True", "these tests expect a host python3 >= 3.9 in /usr/bin"
    return "/usr/bin/python3"


def venv_eval(host: Host, code: str) -> str:
    proc = subprocess.run([str(host.venv_python), "-c", code], capture_output=True, text=True,
                          env={**os.environ, **host.env()}, check=True, timeout=60)
    return proc.stdout.strip()


def test_executables_are_root_0750_and_run_the_module_venv(installed_root: Host) -> None:
    expected = source_executables()
    assert expected["addon"], "the work tree has no addon executables to install"
    python = installed_root.root / "lib" / "amocrm" / "venv" / "bin" / "python3"
    for sub, names in expected.items():
        for name in names:
            path = installed_root.root / sub / name
            st = path.stat()
            assert (st.st_uid, st.st_gid) == (0, 0), path
            assert stat.S_IMODE(st.st_mode) == 0o750, f"{path}: {oct(st.st_mode)}"
            first = path.read_bytes().split(b"\n", 1)[0].decode()
            source_first = (REPO / sub / name).read_bytes().split(b"\n", 1)[0].decode()
            if name == "amocrm_event":  # the hook runs on the host's own Python, not the venv's
                assert first == f"#!{host_python()} -IS", path
            elif "python" in source_first:
                assert first == f"#!{python}", path
            else:
                assert first == source_first, path
    # The package beside the handlers is the venv's copy, not the work tree.
    link = installed_root.addon("billmgr_amocrm")
    assert link.is_symlink()
    assert link.resolve() == Path(venv_eval(installed_root, "import billmgr_amocrm, os; "
                                            "print(os.path.dirname(billmgr_amocrm.__file__))")).resolve()
    assert str(link.resolve()).startswith(str(installed_root.root))


def test_venv_holds_exactly_the_locked_dependencies(installed_root: Host) -> None:
    version = venv_eval(installed_root, "import sys; print('%d.%d' % sys.version_info[:2])")
    wanted = {}
    for pin in read_pins(LOCK):
        assert pin.hashes, f"{pin.name}: no hash in the lock"
        if pin.marker and not Marker(pin.marker).evaluate({"python_version": version}):
            continue
        wanted[canonicalize_name(pin.name)] = pin.version
    installed = json.loads(venv_eval(
        installed_root,
        "import json, importlib.metadata as m; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"))
    installed = {canonicalize_name(k): v for k, v in installed.items()}
    assert {"requests", "lxml", "pymysql", "pydantic", "pip"} <= set(wanted)
    for name, pinned in wanted.items():
        assert installed.get(name) == pinned, name
    assert installed["billmgr-amocrm"]
    # Every runtime module imports inside the installed venv (no work-tree path involved).
    venv_eval(installed_root, "import requests, lxml.etree, pymysql, pydantic, billmgr_amocrm.db")


def test_config_dir_is_private_and_defaults_are_in_place(installed_root: Host) -> None:
    etc = installed_root.etc
    assert stat.S_IMODE(etc.stat().st_mode) == 0o700
    for path in etc.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert path.stat().st_uid == 0
    assert (etc / "presets.default").read_bytes() == (REPO / "etc/amocrm/presets.default").read_bytes()
    default_conf = REPO / "etc" / "amocrm" / "amocrm.conf.default"
    if default_conf.exists():
        assert (etc / "amocrm.conf").exists()
    descriptor = REPO / "xml" / "billmgr_mod_amocrm.xml"
    installed = installed_root.root / "etc" / "xml" / descriptor.name
    assert installed.read_bytes() == descriptor.read_bytes()


def test_tables_are_migrated_from_db_conf(installed_root: Host) -> None:
    tables = installed_root.tables()
    for name in ("amocrm_account2contact", "amocrm_profile2company", "amocrm_item2lead"):
        assert name in tables


def test_panel_is_restarted_and_worker_scheduled(installed_root: Host) -> None:
    assert "-m billmgr exit" in installed_root.mgrctl_calls()
    template = REPO / "etc" / "amocrm" / "dist" / "amocrm-task.cron"
    cron = installed_root.cron_dir / "amocrm-task"
    if template.exists():
        text = cron.read_text()
        assert str(installed_root.root) in text
        assert "/usr/local/mgr5/" not in text
        assert stat.S_IMODE(cron.stat().st_mode) == 0o644
    else:
        assert not cron.exists()


def test_installed_hook_echoes_and_spools(installed_root: Host) -> None:
    doc = '<?xml version="1.0" encoding="UTF-8"?>\n<doc><elid>42</elid><name>Тест</name></doc>\n'
    spool = installed_root.root / "var" / "amocrm" / "spool"
    before = set(spool.glob("*.json")) if spool.exists() else set()
    run = run_addon(installed_root.addon("amocrm_event"),
                    {"func": "account.edit", "elid": "42", "sok": "ok"}, doc, extra=installed_root.env())
    assert run.returncode == 0, run.stderr
    assert run.stdout == doc.encode()
    assert len(set(spool.glob("*.json")) - before) == 1


def test_upgrade_keeps_config_tokens_links_and_queue(installed_root: Host) -> None:
    etc = installed_root.etc
    conf = etc / "amocrm.conf"
    conf.write_text('{"admin": "edited"}\n')
    conf.chmod(0o644)  # an admin loosened it: the installer tightens it back
    (etc / "presets.custom").write_text('{"custom": true}\n')
    (etc / "refresh_token").write_text("def50200-secret-refresh\n")
    (etc / "presets.default").write_text("stale\n")
    spooled = installed_root.root / "var" / "amocrm" / "spool" / "0000-upgrade-test.json"
    spooled.parent.mkdir(parents=True, exist_ok=True)
    spooled.write_text('{"v": 1}')
    installed_root.sql("INSERT INTO amocrm_account2contact (billmgr_id, amocrm_id) VALUES (9001, 77001)")
    venv_link = installed_root.root / "lib" / "amocrm" / "venv"
    old_release = os.readlink(venv_link)

    proc = installed_root.install()

    assert "upgraded" in proc.stdout
    assert conf.read_text() == '{"admin": "edited"}\n'
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert (etc / "presets.custom").read_text() == '{"custom": true}\n'
    assert (etc / "refresh_token").read_text() == "def50200-secret-refresh\n"
    assert "def50200" not in proc.stdout + proc.stderr
    assert (etc / "presets.default").read_bytes() == (REPO / "etc/amocrm/presets.default").read_bytes()
    assert spooled.exists()
    links = installed_root.sql("SELECT amocrm_id FROM amocrm_account2contact WHERE billmgr_id = 9001")
    assert links == [(77001,)]
    new_release = os.readlink(venv_link)
    assert new_release != old_release
    releases = sorted(p.name for p in (venv_link.parent / "releases").iterdir())
    assert releases == sorted([Path(old_release).name, Path(new_release).name])
    assert installed_root.mgrctl_calls().count("-m billmgr exit") >= 2


def test_failed_upgrade_leaves_the_previous_install_working(installed_root: Host) -> None:
    db_conf = installed_root.root / "etc" / "billmgr.conf.d" / "db.conf"
    good = db_conf.read_text()
    venv_link = installed_root.root / "lib" / "amocrm" / "venv"
    live = os.readlink(venv_link)
    releases = sorted((venv_link.parent / "releases").iterdir())
    hook_before = installed_root.addon("amocrm_event").read_bytes()
    db_conf.write_text(good.replace(f"DBName {installed_root.db.database}", "DBName amocrm_no_such_db"))
    try:
        proc = installed_root.install(check=False)
    finally:
        db_conf.write_text(good)
    assert proc.returncode != 0
    assert "migrating the database" in proc.stderr and "previous install" in proc.stderr
    assert os.readlink(venv_link) == live
    assert sorted((venv_link.parent / "releases").iterdir()) == releases
    assert installed_root.addon("amocrm_event").read_bytes() == hook_before
    run = run_addon(installed_root.addon("amocrm_event"), {"func": "user.edit"}, "<doc/>",
                    extra=installed_root.env())
    assert (run.returncode, run.stdout) == (0, b"<doc/>")


def test_missing_db_conf_is_a_clear_error_and_changes_nothing(tmp_path: Path, install_db) -> None:
    host = make_host(tmp_path, install_db)
    (host.root / "etc" / "billmgr.conf.d" / "db.conf").unlink()
    proc = run_installer(host.root, check=False)
    assert proc.returncode == 1
    assert "db.conf not found" in proc.stderr
    assert not (host.root / "lib").exists()
    assert sorted(p.name for p in (host.root / "addon").iterdir()) == []


def test_a_second_installer_on_the_same_root_is_refused(tmp_path: Path, install_db) -> None:
    host = make_host(tmp_path, install_db)
    lock = FileLock(host.root / "lib" / "amocrm" / ".install.lock", note_holder=True)
    assert lock.acquire(timeout=0)
    try:
        proc = run_installer(host.root, check=False)
    finally:
        lock.release()
    assert proc.returncode == ExitStatus.ERROR
    assert f"another amocrm-install is running on {host.root}: process {os.getpid()}" in proc.stderr
    assert sorted(p.name for p in (host.root / "lib" / "amocrm").iterdir()) == [".install.lock"]
    assert sorted(p.name for p in (host.root / "addon").iterdir()) == []


@pytest.mark.parametrize("tampered", ["pip", "idna"])
def test_an_install_refuses_a_wheel_that_does_not_match_the_lock(tmp_path: Path, install_db,
                                                                 wheelhouse: Path, tampered: str) -> None:
    """pip's own wheel is checked by the installer before it runs; every other one by pip."""
    copy = tmp_path / "wheelhouse"
    shutil.copytree(wheelhouse, copy, ignore=shutil.ignore_patterns(".*"))
    for wheel in copy.glob(f"{tampered}-*.whl"):
        with wheel.open("ab") as file:
            file.write(b"\0tampered")
    host = make_host(tmp_path / "host", install_db, copy)
    proc = host.install(check=False)
    assert proc.returncode == ExitStatus.ERROR
    if tampered == "pip":
        assert "which" in proc.stderr and "does not list: refusing to run it" in proc.stderr
    else:
        assert "DO NOT MATCH THE HASHES" in proc.stderr
    assert "nothing was switched" in proc.stderr
    assert not (host.root / "lib" / "amocrm" / "venv").exists()
    assert sorted(p.name for p in (host.root / "addon").iterdir()) == []
