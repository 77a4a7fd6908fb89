"""``sbin/amocrm_task --daemon`` as systemd runs it: a real process, MariaDB and the emulator."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

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


@contextmanager
def daemon_running(**env: str) -> Iterator[subprocess.Popen]:
    """``amocrm_task --daemon`` for the block, which ends by stopping it as systemd does
    (SIGTERM, exit 0); killed if the block fails."""
    daemon = subprocess.Popen([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--daemon"],
                              env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield daemon
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=DEADLINE) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        daemon.stdout.close()
        daemon.stderr.close()


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
    with daemon_running(BILLMGR_AMOCRM_RECONCILE_EVERY="1") as daemon:
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


def test_a_rule_saved_while_the_daemon_runs_reaches_what_it_already_sent_without_an_event(rig):
    """The panel saves amocrm.conf; the daemon (systemd's, running for weeks) must work by it from
    then on, and what it sent before must be brought to it: no admin thinks of restarting the
    worker or of `amocrm reconcile --full` after adding a tag or a field mapping. It used its
    start-up copy of the rules until restarted."""
    with daemon_running():              # the shipped schedule: the reconciler hourly, the re-check daily
        wait_for("initial export", lambda: synced(rig))
        linked = set(rig.all_links(Kind.CONTACT).values())
        assert linked
        assert not any("saved-while-running" in tags for tags in rig.tag_names("contacts", linked).values())

        rig.add_rule("tags", {"entity": "contact", "tag": "saved-while-running"})   # as the panel saves

        def tagged(ids) -> bool:
            return all("saved-while-running" in tags for tags in rig.tag_names("contacts", ids).values())

        wait_for("the new rule's tag on every contact sent before it", lambda: tagged(linked))
        # and what is sent from now on goes by it too
        fresh = rig.sandbox.add_client(name="After The Save", email="after@example.com").account_id
        rig.app.store.enqueue(Kind.CONTACT, fresh, "edit")
        newcomer = lambda: rig.link(Kind.CONTACT, fresh)      # noqa: E731 - read again each try
        wait_for("the newcomer, tagged", lambda: newcomer() is not None and tagged([newcomer()]))
    assert " amocrm_task ERROR " not in task_log()
    assert "the settings changed (amocrm.conf or presets): the worker works by them from now on" in task_log()
