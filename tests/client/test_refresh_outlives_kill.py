"""A process killed while amoCRM answers its token refresh does not lose the new pair.

amoCRM spends the refresh token when it applies the refresh; the new pair exists only in the
answer. Here the token endpoint takes 3 s, and the refreshing process (with its whole process
group, as an admin's ``kill`` of a cron job or Ctrl-C would) is SIGKILLed one second after
it took ``token.lock``: the refresh still lands in the token files, and the next process
goes on with it instead of presenting the spent token and asking for re-authorization.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from billmgr_amocrm.amocrm.tokens import TokenStore, fingerprint
from billmgr_amocrm.bootstrap import token_status
from billmgr_amocrm.errors import RetryLater
from billmgr_amocrm.foundation.locks import FileLock
from tests.token_processes import token_processes
from tests.waiting import wait_for

from .conftest import Setup

REPO = Path(__file__).resolve().parents[2]
SLOW_TOKEN_ANSWER = 3.0


def lock_holder_pid(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def test_a_refresh_killed_mid_answer_still_lands_in_the_token_files(setup: Setup) -> None:
    paths = setup.paths
    before = TokenStore(paths).read()
    assert before is not None
    meta = json.loads(paths.token_meta.read_text())
    meta["expires_at"] = time.time() - 1          # the process sees an expired token ...
    paths.token_meta.write_text(json.dumps(meta))
    setup.emu.control.advance(86400 + 60)         # ... and amoCRM agrees
    setup.emu.control.add_fault("delay", path="^/oauth2/access_token$", delay=SLOW_TOKEN_ANSWER)
    env = dict(os.environ, MGR5_ROOT=str(paths.root), BILLMGR_AMOCRM_ALLOW_LOOPBACK="1")
    argv = [sys.executable, "-m", "tests.client.racer", str(time.time()), "1", "5"]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_for("the process takes token.lock",
             lambda: lock_holder_pid(paths.token_lock) in (proc.pid, *token_processes(paths.root)),
             timeout=20, every=0.05)
    time.sleep(1.0)                               # the refresh is on its way, its answer is not
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    helpers = token_processes(paths.root)
    assert helpers, "no refresh process outlived the killed one"
    for pid in helpers:                           # systemd's stop: SIGTERM to every process left
        os.kill(pid, signal.SIGTERM)

    grants = wait_for("amoCRM applies the refresh",
                      lambda: [r for r in setup.emu.control.requests() if r["path"] == "/oauth2/access_token"
                               and r["status"] == 200], timeout=20)
    assert len(grants) == 1
    with FileLock(paths.token_lock).held(timeout=20):   # whoever wrote the pair is done with it
        after = TokenStore(paths).read()
    assert after is not None and after.refresh != before.refresh
    assert after.meta.refresh_fingerprint == fingerprint(after.refresh)
    setup.emu.control.clear_faults()

    # the next process expires too, refreshes with the pair the killed one left, and works
    meta = json.loads(paths.token_meta.read_text())
    meta["expires_at"] = time.time() - 1
    paths.token_meta.write_text(json.dumps(meta))
    setup.emu.control.advance(86400 + 60)
    out = subprocess.run([sys.executable, "-m", "tests.client.racer", str(time.time()), "1", "5"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {"ok": 1, "errors": []}
    assert max(setup.emu.control.refresh_token_uses().values()) == 1   # no token presented twice
    assert token_status(paths).state == "ok"


def test_a_refresh_process_that_dies_without_a_pair_is_a_retry_later(setup: Setup) -> None:
    before = TokenStore(setup.paths).read()
    assert before is not None
    setup.jump(86400 + 60)                        # expired on both clocks
    client = setup.client()
    client.credentials.rotate.python = "/bin/false"   # type: ignore[attr-defined]
    with pytest.raises(RetryLater) as caught:
        client.account()
    assert caught.value.code == "token_refresh_failed" and "exit 1" in str(caught.value)
    assert TokenStore(setup.paths).read() == before   # nothing spent, nothing written
    assert token_status(setup.paths, clock=setup.clock).state != "needs_reauth"
    assert setup.emu.control.refresh_token_uses()[before.refresh] == 0
