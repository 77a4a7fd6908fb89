"""Several real processes share one host: one refresh per expiry, one rate limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List

from .conftest import Setup

REPO = Path(__file__).resolve().parents[2]


def _race(setup: Setup, processes: int, calls: int, rate: float) -> List[dict]:
    env = dict(os.environ, MGR5_ROOT=str(setup.paths.root), BILLMGR_AMOCRM_ALLOW_LOOPBACK="1")
    start_at = time.time() + 1.5          # after every interpreter has started
    argv = [sys.executable, "-m", "tests.client.racer", str(start_at), str(calls), str(rate)]
    procs = [subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(processes)]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def max_in_any_second(times: List[float]) -> int:
    ordered, best, start = sorted(times), 0, 0
    for end, stamp in enumerate(ordered):
        while ordered[start] <= stamp - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_four_processes_racing_one_expiry_refresh_once(setup: Setup) -> None:
    meta = json.loads(setup.paths.token_meta.read_text())
    meta["expires_at"] = time.time() - 1     # every racer sees an expired token ...
    setup.paths.token_meta.write_text(json.dumps(meta))
    setup.emu.control.advance(86400 + 60)    # ... and amoCRM agrees
    results = _race(setup, processes=4, calls=2, rate=6.0)
    assert [r["errors"] for r in results] == [[]] * 4
    assert sum(r["ok"] for r in results) == 8
    grants = setup.emu.control.token_grants("refresh_token")
    assert len(grants) == 1 and grants[0]["status"] == 200
    uses = setup.emu.control.refresh_token_uses()
    assert max(uses.values()) == 1            # no refresh token was ever presented twice


def test_rate_limit_holds_across_processes(setup: Setup) -> None:
    results = _race(setup, processes=4, calls=5, rate=5.0)
    assert sum(r["ok"] for r in results) == 20
    times = [r["wall_time"] for r in setup.api_requests() if r["path"].startswith("/api/v4/")]
    assert len(times) == 20
    assert max_in_any_second(times) <= 5
    assert all(r["status"] != 429 for r in setup.api_requests())
