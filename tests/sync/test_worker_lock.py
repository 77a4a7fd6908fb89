"""One worker per host: a second instance sees the lock and steps aside."""

from __future__ import annotations

from billmgr_amocrm.foundation.exitstatus import ExitStatus
from billmgr_amocrm.foundation.locks import FileLock
from billmgr_amocrm.paths import host_paths
from billmgr_amocrm.worker import main


def test_a_second_worker_exits_zero_while_the_first_holds_the_lock(mgr5_root):
    held = FileLock(host_paths().worker_lock)
    assert held.acquire(timeout=0)
    try:
        assert not FileLock(host_paths().worker_lock).acquire(timeout=0)
        assert main(["--once"]) is ExitStatus.OK
        assert "another amocrm_task holds" in host_paths().task_log.read_text(encoding="utf-8")
    finally:
        held.release()
    assert FileLock(host_paths().worker_lock).acquire(timeout=0)
