"""The same one-time code given again finishes a set-up that stopped after the exchange.

The code works once. When what follows the exchange fails (amoCRM busy while the marker
fields are made, the process stopped), the tokens are already stored; the admin saves the
form again with the same code, as the error says, and the set-up finishes without a new
code: the stored pair is recognised as this code's, and amoCRM is not asked again. And a
``amocrm authorize`` killed while amoCRM answers the exchange (Ctrl-C, ``kill -9``) loses
nothing: the exchange runs in a process of its own that stores the pair.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.amocrm.tokens import TokenStore, fingerprint
from billmgr_amocrm.foundation.locks import FileLock
from billmgr_amocrm.paths import HostPaths
from billmgr_amocrm.service.account import SAVE_AGAIN_EN, SAVE_AGAIN_RU
from tests.token_processes import token_processes
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
SLOW_TOKEN_ANSWER = 3.0


def form_of(emulator: Any) -> Dict[str, str]:
    integ = emulator.integration
    return {"url": emulator.url, "client_id": integ["client_id"], "client_secret": integ["client_secret"],
            "redirect_uri": integ["redirect_uri"], "code": integ["auth_code"]}


def test_a_set_up_that_failed_after_the_exchange_finishes_with_the_same_code(
        emulator: Any, mgr5_root: Path) -> None:
    form = form_of(emulator)
    emulator.control.add_fault("status", path="custom_fields", method="GET", status=503)
    with pytest.raises(service.ServiceError) as caught:
        service.authorize(**form)
    shown = {lang: caught.value.message(lang) for lang in ("en", "ru")}
    assert "custom_fields -> 503" in shown["en"]
    assert shown["en"].endswith(". " + SAVE_AGAIN_EN) and shown["ru"].endswith("попыток. " + SAVE_AGAIN_RU)
    stored = TokenStore(HostPaths(mgr5_root)).read()
    assert stored is not None and stored.meta.code_fingerprint == fingerprint(form["code"])
    assert emulator.control.state()["auth_codes"][form["code"]]["used"] is True

    emulator.control.clear_faults()
    result = service.authorize(**form)
    assert result.export_requested and len(result.marker_field_ids) == 3
    assert len(emulator.control.token_grants()) == 1            # the spent code was not presented again
    assert TokenStore(HostPaths(mgr5_root)).read() == stored
    assert service.token_status().state == "ok"


def test_the_same_code_after_a_finished_set_up_asks_amocrm_nothing(emulator: Any) -> None:
    form = form_of(emulator)
    first = service.authorize(**form)
    again = service.authorize(**form)
    assert again.marker_field_ids == first.marker_field_ids and again.base_url == first.base_url
    assert len(emulator.control.token_grants()) == 1


def test_another_secret_key_with_the_same_code_goes_to_amocrm_and_is_refused(emulator: Any) -> None:
    form = form_of(emulator)
    service.authorize(**form)
    with pytest.raises(service.ServiceError) as caught:
        service.authorize(**dict(form, client_secret="another-secret-key-0123456789"))
    assert "amoCRM refused the integration keys" in caught.value.message("en")
    assert [g["status"] for g in emulator.control.token_grants()] == [200, 401]


def test_an_authorize_killed_while_amocrm_answers_loses_nothing_and_the_same_command_finishes(
        emulator: Any, mgr5_root: Path, tmp_path: Path) -> None:
    form = form_of(emulator)
    secret = tmp_path / "secret"
    secret.write_text(form["client_secret"] + "\n")
    argv = [sys.executable, str(REPO / "sbin" / "amocrm"), "authorize", "--url", form["url"], "--client-id",
            form["client_id"], "--redirect-uri", form["redirect_uri"], "--code", form["code"],
            "--secret-file", str(secret)]
    env = dict(os.environ, MGR5_ROOT=str(mgr5_root), BILLMGR_AMOCRM_ALLOW_LOOPBACK="1")
    emulator.control.add_fault("delay", path="^/oauth2/access_token$", delay=SLOW_TOKEN_ANSWER)
    # its own session, as a terminal's foreground job: the kill reaches the command's whole group
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    wait_for("the exchange is under way", lambda: token_processes(mgr5_root), timeout=30, every=0.05)
    time.sleep(1.0)                               # the code is at amoCRM, its answer is not back
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    for pid in token_processes(mgr5_root):               # systemd's stop or a terminal hang-up: ignored
        os.kill(pid, signal.SIGTERM)

    paths = HostPaths(mgr5_root)
    wait_for("amoCRM applies the code",
             lambda: [g for g in emulator.control.token_grants() if g["status"] == 200], timeout=20)
    with FileLock(paths.token_lock).held(timeout=20):   # the exchange process is done with the files
        stored = TokenStore(paths).read()
    assert stored is not None and stored.meta.code_fingerprint == fingerprint(form["code"])
    assert paths.client_secret.read_text().strip() == form["client_secret"]

    emulator.control.clear_faults()
    again = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "authorized: emulator" in again.stdout and "initial export requested" in again.stdout
    assert len(emulator.control.token_grants()) == 1        # the spent code was not presented again
    assert TokenStore(paths).read() == stored
