"""``authorize`` checks everything local before it spends the one-time code (issue 14, point 5).

Each local fault (a settings file, a directory, the database, the form) makes it fail with
a message that names what to fix, and amoCRM (the emulator) shows the code unused: the
admin fixes the fault and authorizes again with the same code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.paths import HostPaths

Fault = Callable[[Path, Dict[str, str]], None]


def no_presets(root: Path, form: Dict[str, str]) -> None:
    (root / "etc/amocrm/presets.default").unlink()


def broken_conf(root: Path, form: Dict[str, str]) -> None:
    (root / "etc/amocrm/amocrm.conf").write_text('{"version": 1, "sync": {"batch_size": 9999}}')


def bad_presets_custom(root: Path, form: Dict[str, str]) -> None:
    (root / "etc/amocrm/presets.custom").write_text("{not json")


def shared_etc(root: Path, form: Dict[str, str]) -> None:
    (root / "etc/amocrm").chmod(0o777)


def state_is_a_file(root: Path, form: Dict[str, str]) -> None:
    (root / "var/amocrm").write_text("")


def no_db_conf(root: Path, form: Dict[str, str]) -> None:
    (root / "etc/billmgr.conf.d/db.conf").unlink()


def mysql_down(root: Path, form: Dict[str, str]) -> None:
    conf = root / "etc/billmgr.conf.d/db.conf"
    lines = [line for line in conf.read_text().splitlines() if not line.startswith(("DBHost", "DBPort"))]
    conf.write_text("\n".join([*lines, "DBHost 127.0.0.1", "DBPort 1"]) + "\n")


def empty_secret(root: Path, form: Dict[str, str]) -> None:
    form["client_secret"] = "  "


def spaced_code(root: Path, form: Dict[str, str]) -> None:
    form["code"] = "def 123"


FAULTS: Dict[str, tuple[Fault, tuple[str, ...]]] = {
    "presets.default missing": (no_presets, ("presets.default: file not found", "reinstall the module")),
    "amocrm.conf invalid": (broken_conf, ("amocrm.conf", "sync.batch_size", "Fix the place named")),
    "presets.custom not JSON": (bad_presets_custom, ("presets.custom", "line 1")),
    "etc/amocrm writable by others": (shared_etc, ("can be changed by other users (mode 0777)", "chmod 700")),
    "var/amocrm not a directory": (state_is_a_file, ("var/amocrm is not a directory", "mkdir -m 700")),
    "db.conf missing": (no_db_conf, ("db.conf",)),
    "MySQL unreachable": (mysql_down, ("MySQL", "127.0.0.1")),
    "empty secret key": (empty_secret, ("the secret key is empty",)),
    "code with a space": (spaced_code, ("the authorization code contains spaces",)),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_local_fault_fails_authorize_before_the_code_is_spent(
        fault: str, sandbox_db: Any, amocrm_emulator_factory: Any, mgr5_root: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    emulator = amocrm_emulator_factory()
    integ = emulator.integration
    form = {"url": emulator.url, "client_id": integ["client_id"], "client_secret": integ["client_secret"],
            "redirect_uri": integ["redirect_uri"], "code": integ["auth_code"]}
    (mgr5_root / "etc/amocrm/amocrm.conf").write_text(json.dumps({"version": 1}))
    break_it, words = FAULTS[fault]
    break_it(mgr5_root, form)
    with pytest.raises(service.ServiceError) as caught:
        service.authorize(**form)
    message = caught.value.message("en")
    assert "Nothing was authorized" in message, message
    for word in words:
        assert word in message, (word, message)
    assert caught.value.message("ru") != message        # the panel shows it in Russian too
    assert emulator.control.state()["auth_codes"][integ["auth_code"]]["used"] is False
    assert not [r for r in emulator.control.requests() if r["path"] == "/oauth2/access_token"]
    paths = HostPaths(mgr5_root)
    assert not paths.access_token.exists() and not paths.client_secret.exists()


def test_after_the_fault_is_fixed_the_same_code_authorizes(
        sandbox_db: Any, amocrm_emulator_factory: Any, mgr5_root: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    emulator = amocrm_emulator_factory()
    integ = emulator.integration
    form = (emulator.url, integ["client_id"], integ["client_secret"], integ["redirect_uri"],
            integ["auth_code"])
    presets = mgr5_root / "etc/amocrm/presets.default"
    kept = presets.read_bytes()
    presets.unlink()
    with pytest.raises(service.ServiceError, match="presets.default"):
        service.authorize(*form)
    presets.write_bytes(kept)
    result = service.authorize(*form)
    assert result.export_requested and len(result.marker_field_ids) == 3
    assert emulator.control.state()["auth_codes"][integ["auth_code"]]["used"] is True


def test_the_cli_says_what_to_fix_and_leaves_the_code_unused(
        sandbox_db: Any, amocrm_emulator_factory: Any, mgr5_root: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    import io

    from billmgr_amocrm import cli
    from billmgr_amocrm.foundation.exitstatus import ExitStatus

    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    emulator = amocrm_emulator_factory()
    integ = emulator.integration
    secret = tmp_path / "secret"
    secret.write_text(integ["client_secret"])
    (mgr5_root / "etc/amocrm/presets.default").unlink()
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["authorize", "--url", emulator.url, "--client-id", integ["client_id"], "--redirect-uri",
                     integ["redirect_uri"], "--code", integ["auth_code"], "--secret-file", str(secret)],
                    out=out, err=err, stdin=io.StringIO(""))
    assert code is not ExitStatus.OK and not out.getvalue()
    assert "presets.default: file not found" in err.getvalue() and "sbin/amocrm-install" in err.getvalue()
    assert emulator.control.state()["auth_codes"][integ["auth_code"]]["used"] is False
