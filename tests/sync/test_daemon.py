"""``sbin/amocrm_task --daemon`` as systemd runs it: a real process, MariaDB and the emulator."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.paths import host_paths
from tests import waiting

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 60.0   # a generous bound for waiting on the daemon, not a speed assertion
LINE = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \[\d+\] amocrm_task [A-Z]+ ")


def wait_for(what: str, check: Callable[[], object]) -> None:
    waiting.wait_for(f"the daemon gets there: {what}", check, timeout=DEADLINE, every=0.2,
                     explain=lambda: task_log()[-3000:])


def task_log() -> str:
    path = host_paths().task_log
    return path.read_text(encoding="utf-8") if path.exists() else ""


def worker(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "sbin" / "amocrm_task"), *args],
                            env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def connections_of(rig) -> set[int]:
    database = rig.sandbox.settings.database
    rows = rig.sandbox.query("SELECT id FROM information_schema.processlist WHERE db = %s", (database,))
    return {int(r[0]) for r in rows}


def synced(rig) -> bool:
    status = service.status(app=rig.app)
    return status.queue_depth == 0 and not status.export_requested and status.linked["lead"] > 0


def test_the_daemon_exports_survives_a_lost_mysql_connection_reconciles_and_stops_on_sigterm(rig):
    host_paths().debug_conf.write_text("amocrm_task 9\n", encoding="utf-8")   # ISPsystem's debug level
    before = connections_of(rig)
    daemon = worker("--daemon", BILLMGR_AMOCRM_RECONCILE_EVERY="1")
    try:
        wait_for("initial export", lambda: synced(rig))
        # one instance per host: a second worker (cron's) steps aside at once
        second = subprocess.run([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"],
                                env=dict(os.environ), capture_output=True, timeout=60, check=False)
        assert second.returncode == 0 and "another amocrm_task holds" in task_log()

        # MariaDB drops the daemon's session (a restart looks the same to the client)
        theirs = connections_of(rig) - before
        assert theirs
        for thread_id in theirs:
            rig.sandbox.query("KILL %s", (thread_id,))
        # a client added without any event: only the periodic reconciler can find it
        fresh = rig.sandbox.add_client(name="Found By Reconcile", email="recon@example.com").account_id
        wait_for("the reconciler's client", lambda: rig.link(Kind.CONTACT, fresh))
        assert daemon.poll() is None

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=DEADLINE) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        daemon.stdout.close()
        daemon.stderr.close()
    text = task_log()
    assert "amocrm_task daemon started" in text and "signal 15: finishing the current batch" in text
    assert "reconcile: queued 1 contacts" in text
    assert re.search(r"amocrm_task DEBUG amoCRM POST /api/v4/contacts -> 200", text)
    # every line is a log record's, whole (cron's worker wrote beside the daemon), and the lost
    # session is a warning, not an error with a traceback: wherever the KILL lands (CI once saw
    # it land in the reconciler)
    odd = [line for line in text.splitlines() if line and not LINE.match(line)]
    assert not odd, odd
    assert " amocrm_task ERROR " not in text
    for kind in Kind:
        counts = rig.marker_counts(kind.amo_entity)
        assert max(counts.values()) == 1 and len(counts) == len(rig.all_links(kind))
