"""The host-wide token lock: fair turns between processes, and a timeout that names the holder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from billmgr_amocrm.amocrm.tokens import TokenStore
from billmgr_amocrm.errors import RetryLater
from billmgr_amocrm.paths import HostPaths

ADDON = str(Path(__file__).resolve().parents[2] / "addon")

# A peer that takes the lock, holds it 50 ms, lets it go and asks again at once, for
# SECONDS: what a refresh loop running late does.
GREEDY_PEER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {addon!r})
from billmgr_amocrm.amocrm.tokens import TokenStore
from billmgr_amocrm.paths import HostPaths
store = TokenStore(HostPaths(Path({root!r})))
end = time.monotonic() + {seconds}
first = True
while time.monotonic() < end:
    with store.lock():
        if first:
            print("holding", flush=True)
            first = False
        time.sleep({hold})
"""


def greedy_peer(root: Path, seconds: float, hold: float = 0.05) -> subprocess.Popen:
    code = GREEDY_PEER.format(addon=ADDON, root=str(root), seconds=seconds, hold=hold)
    peer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert peer.stdout is not None and peer.stdout.readline().strip() == "holding"
    return peer


def test_a_peer_that_asks_again_at_once_cannot_starve_a_waiter(tmp_path: Path) -> None:
    peer = greedy_peer(tmp_path, seconds=6.0)
    try:
        waits = []
        for _ in range(5):
            asked = time.monotonic()
            with TokenStore(HostPaths(tmp_path)).lock(timeout=3.0):
                waits.append(time.monotonic() - asked)
        # each turn waits for at most a hold or two of the peer (50 ms each), never for
        # the whole 6 s the peer keeps asking
        assert max(waits) < 1.5, waits
    finally:
        peer.kill()
        peer.wait()


def test_timeout_names_the_holder_and_the_lock_is_usable_after(tmp_path: Path) -> None:
    peer = greedy_peer(tmp_path, seconds=2.0, hold=2.0)
    try:
        with pytest.raises(RetryLater) as caught, TokenStore(HostPaths(tmp_path)).lock(timeout=0.3):
            pass  # pragma: no cover - must not get here
        assert f"process {peer.pid} (for " in str(caught.value)
        assert "token.lock" in str(caught.value)
    finally:
        peer.kill()
        peer.wait()
    with TokenStore(HostPaths(tmp_path)).lock(timeout=1.0):   # a dead holder frees it
        pass
    for name in ("token.lock", "token.queue"):
        assert oct((tmp_path / "etc/amocrm" / name).stat().st_mode & 0o777) == "0o600", name
    assert not os.access(tmp_path / "etc/amocrm/token.lock", os.X_OK)
