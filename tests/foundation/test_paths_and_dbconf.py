from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from billmgr_amocrm import paths
from billmgr_amocrm.dbconf import DbConfigError, DbSettings, load_db_settings, parse_db_conf
from billmgr_amocrm.foundation import files as atomicfile
from tests.sandbox.dbconf import render_db_conf


def test_root_defaults_to_usr_local_mgr5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MGR5_ROOT", raising=False)
    assert paths.host_paths().amocrm_conf == Path("/usr/local/mgr5/etc/amocrm/amocrm.conf")
    assert paths.host_paths().task_log == Path("/usr/local/mgr5/var/amocrm_task.log")


def test_every_path_follows_mgr5_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MGR5_ROOT", str(tmp_path))
    hp = paths.host_paths()
    for name in dir(paths.HostPaths):
        value = getattr(hp, name)
        if isinstance(value, Path):
            assert tmp_path in value.parents or value == tmp_path, name
    assert hp.db_conf == tmp_path / "etc/billmgr.conf.d/db.conf"
    assert hp.access_token == tmp_path / "etc/amocrm/access_token"
    assert hp.refresh_token == tmp_path / "etc/amocrm/refresh_token"
    assert hp.presets_custom == tmp_path / "etc/amocrm/presets.custom"
    assert hp.action_log == tmp_path / "var/amocrm_action.log"


def test_db_conf_is_read_as_a_host_keeps_it(mgr5_root: Path) -> None:
    (mgr5_root / "etc/billmgr.conf.d/db.conf").write_text(
        "# written by the installer\nDBHost db.local\nDBUser billmgr\nDBPassword s3cr et\nDBName billmgr\n"
        "SomethingElse x\n"
    )
    settings = load_db_settings()
    assert settings == DbSettings(host="db.local", user="billmgr", password="s3cr et", database="billmgr")
    assert "s3cr" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("DBHost 127.0.0.1:3307\nDBUser u\nDBName d\n", "127.0.0.1", 3307),
        ("DBHost h\nDBPort 3310\nDBUser u\nDBName d\n", "h", 3310),
        ("DBHost h\nDBUser u\nDBName d\n", "h", 3306),
    ],
)
def test_db_conf_port_forms(text: str, host: str, port: int) -> None:
    settings = parse_db_conf(text)
    assert (settings.host, settings.port) == (host, port)


def test_db_conf_errors_name_the_problem(mgr5_root: Path) -> None:
    with pytest.raises(DbConfigError, match="cannot read .*db.conf"):
        load_db_settings()
    with pytest.raises(DbConfigError, match="missing DBUser, DBName"):
        parse_db_conf("DBHost h\n")
    with pytest.raises(DbConfigError, match="DBPort is not a number"):
        parse_db_conf("DBHost h\nDBPort x\nDBUser u\nDBName d\n")


def test_render_round_trips() -> None:
    settings = DbSettings(host="h", user="u", password="p w", database="d", port=3311)
    assert parse_db_conf(render_db_conf(settings)) == settings


def test_write_atomic_is_private_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "secret"
    atomicfile.write_atomic(target, "one")
    old_umask = os.umask(0)
    try:
        atomicfile.write_atomic(target, b"two")
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["secret"]
    atomicfile.check_private(target)
    target.chmod(0o644)
    with pytest.raises(atomicfile.InsecureFileError, match="chmod 600"):
        atomicfile.check_private(target)


def test_string_helpers_match_host_paths(mgr5_root: Path) -> None:
    hp = paths.host_paths()
    assert paths.spool_dir_str() == str(hp.spool_dir)
    assert paths.task_log_str() == str(hp.task_log)
