from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from billmgr_amocrm import paths
from billmgr_amocrm.dbconf import DbConfigError, DbSettings, load_db_settings, paramlist_values, parse_db_conf
from billmgr_amocrm.foundation import files as atomicfile
from billmgr_amocrm.mgrctl import MgrctlError, MgrctlRefused, parse_answer
from tests.sandbox.dbconf import render_db_conf
from tests.sandbox.fake_mgrctl import calls, install_fake_mgrctl


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


# --------------------------------------------------------------------------- mgrctl paramlist
DB_CONF = "DBHost conf.local\nDBUser conf_user\nDBPassword conf-secret\nDBName from_db_conf\n"
PANEL = DbSettings(host="panel.local", user="panel_user", password="pa$$ <&> word", database="from_mgrctl",
                   port=3307, unix_socket="/run/mysqld/mysqld.sock")


def test_paramlist_wins_where_mgrctl_is(mgr5_root: Path) -> None:
    (mgr5_root / "etc/billmgr.conf.d/db.conf").write_text(DB_CONF)
    install_fake_mgrctl(mgr5_root, PANEL)
    assert load_db_settings() == PANEL
    assert calls(mgr5_root) == ["paramlist"]


def test_db_conf_where_there_is_no_mgrctl(mgr5_root: Path) -> None:
    (mgr5_root / "etc/billmgr.conf.d/db.conf").write_text(DB_CONF)
    assert load_db_settings().database == "from_db_conf"
    (mgr5_root / "sbin" / "mgrctl").write_text("not executable")   # not a usable mgrctl either
    assert load_db_settings().database == "from_db_conf"


@pytest.mark.parametrize("fault", ["exit", "garbage", "refuse"])
def test_a_failing_mgrctl_falls_back_to_db_conf_and_never_shows_the_password(
        mgr5_root: Path, fault: str, caplog: pytest.LogCaptureFixture) -> None:
    (mgr5_root / "etc/billmgr.conf.d/db.conf").write_text(DB_CONF)
    install_fake_mgrctl(mgr5_root, PANEL, fault=fault)
    caplog.set_level(logging.DEBUG)
    assert load_db_settings().database == "from_db_conf"
    assert "paramlist" in caplog.text and "db.conf" in caplog.text
    (mgr5_root / "etc/billmgr.conf.d/db.conf").unlink()
    with pytest.raises(DbConfigError) as caught:
        load_db_settings()
    assert "paramlist" in str(caught.value) and "db.conf does not exist" in str(caught.value)
    for text in (caplog.text, str(caught.value), repr(caught.value)):
        assert "pa$$" not in text and "conf-secret" not in text and "leaked" not in text


def test_an_incomplete_paramlist_falls_back_too(mgr5_root: Path) -> None:
    (mgr5_root / "etc/billmgr.conf.d/db.conf").write_text(DB_CONF)
    install_fake_mgrctl(mgr5_root, PANEL, paramlist=DbSettings(host="h", user="", database="x", password="p"))
    assert load_db_settings().database == "from_db_conf"


def test_paramlist_answer_shapes() -> None:
    from lxml import etree

    nested = etree.fromstring(b"<doc><elem><DBHost>h</DBHost><DBUser>u</DBUser><DBName>d</DBName>"
                              b"<DBPassword>p</DBPassword></elem></doc>")
    pairs = etree.fromstring(b"<doc><elem><name>DBHost</name><value>h</value></elem>"
                             b"<elem><name>DBUser</name><value>u</value></elem>"
                             b"<elem><name>DBName</name><value>d</value></elem></doc>")
    assert paramlist_values(nested) == {"DBHost": "h", "DBUser": "u", "DBName": "d", "DBPassword": "p"}
    assert paramlist_values(pairs) == {"DBHost": "h", "DBUser": "u", "DBName": "d"}


def test_mgrctl_answers_are_parsed_without_entities_or_network() -> None:
    hostile = (b'<?xml version="1.0"?><!DOCTYPE doc [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
               b"<doc><DBHost>&x;</DBHost></doc>")
    root = parse_answer(hostile, "paramlist")
    assert "root:" not in (root.findtext("DBHost") or "")
    with pytest.raises(MgrctlError, match="not an XML document"):
        parse_answer(b"DBPassword=secret", "paramlist")
    with pytest.raises(MgrctlRefused) as refused:
        parse_answer(b'<doc><error type="access" object="paramlist"><msg>no</msg></error></doc>', "paramlist")
    assert (refused.value.error_type, refused.value.error_object) == ("access", "paramlist")


def test_the_app_connects_with_what_paramlist_says(mgr5_root: Path, sandbox_db) -> None:  # type: ignore[no-untyped-def]
    from billmgr_amocrm.bootstrap import build

    # db.conf names a database that does not exist: only paramlist's answer can work
    (mgr5_root / "etc/billmgr.conf.d/db.conf").write_text(render_db_conf(
        DbSettings(host=sandbox_db.settings.host, user="nobody", database="no_such_db", port=1)))
    install_fake_mgrctl(mgr5_root, sandbox_db.settings)
    app = build()
    try:
        assert app.db == sandbox_db.settings
        assert app.billing.mgrctl is not None and app.billing.clients([1])
    finally:
        app.close()
