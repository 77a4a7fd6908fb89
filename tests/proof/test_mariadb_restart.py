"""Scenario 4: MariaDB crashes (SIGKILL) in the middle of the worker's batch and comes back on
the same datadir and port: the running daemon (``sbin/amocrm_task --daemon``) reconnects by
itself and delivers everything, nothing lost, nothing duplicated.

The server is a private one (see ``private_mariadb``): the shared server on 3306 serves the
other tests running in parallel and is never touched. amoCRM answers every write slowly
(the emulator holds each one 0.8 s before applying it), so the kill lands while a write is in
flight: the answer comes back to a worker whose MySQL session is gone, and the link commit
fails. The open create intents are what lets the restarted session adopt instead of
creating twice.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pymysql
import pytest

from tests.fixtures.database import SANDBOX_TODAY, unique_db_name
from tests.sandbox import Sandbox, create_database

from .private_mariadb import PrivateMariaDB, find_binaries
from .support import REPO, ProofRig, open_rig

WRITE_DELAY = 0.8          # every amoCRM write answers this late: the kill lands mid-write
DOWN_SECONDS = 2.0         # the server stays down this long (the worker meets the dead session)
DRAIN_TIMEOUT = 180.0
ENTITY_WRITE = re.compile(r"^/api/v4/(contacts|companies|leads)(/link)?$")


@pytest.fixture
def private_mariadb() -> Iterator[PrivateMariaDB]:
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("mariadbd / mariadb-install-db are not installed: scenario 4 needs a private server "
                    "it may kill (the shared one is never restarted)")
    server = PrivateMariaDB(*binaries)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _entity_writes(rig: ProofRig) -> int:
    return sum(1 for r in rig.api_requests() if r["method"] in ("POST", "PATCH")
               and ENTITY_WRITE.match(r["path"]))


def _writes_reached(rig: ProofRig, target: int) -> bool:
    return _entity_writes(rig) >= target


def _depth_below(rig: ProofRig, depth: int) -> bool:
    """Some queue rows completed since ``depth`` was read (False while the server comes back)."""
    try:
        return rig.depth() < depth
    except pymysql.err.MySQLError:
        rig.sandbox.close()
        return False


def test_a_mariadb_crash_mid_batch_loses_and_duplicates_nothing(
        private_mariadb: PrivateMariaDB, mgr5_root: Path, amocrm_emulator_factory: Callable[..., Any],
        monkeypatch: pytest.MonkeyPatch, scale: Any) -> None:
    server = private_mariadb
    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    db = replace(server.settings, database=unique_db_name())
    create_database(db)
    emulator = amocrm_emulator_factory()
    rig = open_rig(db, mgr5_root, emulator, clients=scale(40, 300), services=scale(120, 1500),
                   today=SANDBOX_TODAY)
    daemon = None
    try:
        queued = rig.enqueue_everything()
        rig.app.close()                      # the test holds no session across the crash
        rig.sandbox.close()
        rig.control.add_fault("delay", path="^/api/v4/(contacts|companies|leads)(/link)?$", method="POST",
                              delay=WRITE_DELAY)
        rig.control.add_fault("delay", path="^/api/v4/(contacts|companies|leads)$", method="PATCH",
                              delay=WRITE_DELAY)
        env = dict(os.environ, BILLMGR_AMOCRM_RECONCILE_EVERY="100000")
        daemon = subprocess.Popen([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--daemon"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        pending_at_kill = []
        for _ in range(scale(1, 4)):
            # the worker is mid-pass: two more writes sent and a batch's rows completed since the
            # last crash, while other batches (several are in flight at once) still wait for answers
            writes = _entity_writes(rig)
            _wait_for(functools.partial(_writes_reached, rig, writes + 2), 120, "the worker's next writes")
            depth = pending_at_kill[-1] if pending_at_kill else queued
            _wait_for(functools.partial(_depth_below, rig, depth), 120, "the worker to complete a batch")
            time.sleep(WRITE_DELAY / 2)
            pending_at_kill.append(rig.depth())
            rig.sandbox.close()
            server.kill()
            time.sleep(DOWN_SECONDS)
            assert daemon.poll() is None, "the daemon died with MySQL"
            server.start()

        def drained() -> bool:
            try:
                if rig.depth():
                    # time passes: a row the crash rescheduled is due again
                    rig.sql("UPDATE amocrm_queue SET next_attempt_at = UTC_TIMESTAMP(6) "
                            "WHERE state = 'pending'")
                    return False
                return True
            except pymysql.err.MySQLError:
                rig.sandbox.close()
                return False

        _wait_for(drained, DRAIN_TIMEOUT, "the restarted worker to drain the queue")
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, stderr.decode(errors="replace")[-2000:]
        daemon = None

        task_log = rig.paths.task_log.read_text(encoding="utf-8", errors="replace")
        assert "the MySQL connection was lost" in task_log or "MySQL cannot be reached" in task_log, \
            "the worker never met the dead server: the scenario proved nothing"
        assert all(0 < depth < queued for depth in pending_at_kill), (pending_at_kill, queued)
        rig.sandbox = Sandbox(db)
        rig.rebuild()
        audit = rig.audit()
        assert audit.ok, audit.summary()
        assert server.starts == 1 + len(pending_at_kill)
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait(timeout=30)
        rig.close()
