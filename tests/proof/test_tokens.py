"""Scenario 5: four processes race the token expiry; every refresh token is used exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from tests.client.conftest import Setup

from .support import REPO

RACERS = 4
# Each round one expiry passes for all racers at once and costs one refresh through the
# host-wide limiter; a loaded machine may stretch a round beyond PERIOD.
PERIOD = 0.3
ROUND_BUDGET = PERIOD + 0.5


def test_four_processes_racing_expiry_use_every_refresh_token_once(setup: Setup, scale: Any) -> None:
    rounds = scale(30, 1000)
    env = dict(os.environ, MGR5_ROOT=str(setup.paths.root), BILLMGR_AMOCRM_ALLOW_LOOPBACK="1")
    start_at = time.time() + 2.0          # after every interpreter has started
    procs = [subprocess.Popen([sys.executable, "-m", "tests.proof.token_racer", str(start_at), str(rounds),
                               str(PERIOD)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(RACERS)]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60 + rounds * ROUND_BUDGET * 2)
        assert proc.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["errors"] for r in results] == [[]] * RACERS, [r["slowest"] for r in results]
    assert sum(r["done"] for r in results) == RACERS * rounds

    grants = setup.emu.control.token_grants("refresh_token")
    assert len(grants) == rounds, "one expiry per round must cost exactly one refresh"
    assert all(g["status"] == 200 for g in grants), [g["status"] for g in grants if g["status"] != 200]
    uses = setup.emu.control.refresh_token_uses()
    assert uses and max(uses.values()) == 1, {k[:6]: v for k, v in uses.items() if v != 1}
    assert setup.client().account()["id"]     # the pair on disk is the live one
