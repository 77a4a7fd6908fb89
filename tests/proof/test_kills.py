"""Scenario 3: the worker (``sbin/amocrm_task --once``) killed with SIGKILL at random points,
including between amoCRM's answer and the link commit (slow writes widen that window) and in
the middle of a token refresh (a slow token endpoint): after restarts the state is consistent."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

from billmgr_amocrm.bootstrap import token_status

from .support import REPO, USABLE_TOKEN_STATES, ProofRig


def test_sigkilled_worker_loses_and_duplicates_nothing(proof_rig: ProofRig, scale: Any) -> None:
    rig = proof_rig
    kills = scale(15, 200)
    rng = random.Random(5)
    rig.enqueue_everything()
    # slow answers: the write is applied first, the answer (and so the link commit) comes later
    rig.control.add_fault("delay", path="^/api/v4/(contacts|companies|leads)(/link)?$", method="POST",
                          delay=0.4, probability=0.5)
    rig.control.add_fault("delay", path="^/oauth2/access_token$", delay=0.6)
    env = dict(os.environ)
    worker = [sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"]
    killed_mid_refresh = 0
    for n in range(kills):
        if n % 4 == 3:
            rig.control.advance(86400 + 60)      # the access token expired: the worker refreshes
        since = max((r["seq"] for r in rig.control.requests()), default=0)
        proc = subprocess.Popen(worker, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.6, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        tail = rig.control.requests(since=since)
        if tail and tail[-1]["path"] == "/oauth2/access_token":
            killed_mid_refresh += 1
        rig.make_due()
    rig.control.clear_faults()
    for _ in range(30):
        done = subprocess.run(worker, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        if not rig.depth():
            break
        rig.make_due()
    assert token_status(rig.paths).state in USABLE_TOKEN_STATES, token_status(rig.paths)
    uses = rig.control.refresh_token_uses()
    assert max(uses.values(), default=0) <= 1       # no refresh token presented twice
    audit = rig.audit()
    assert audit.ok, audit.summary()
