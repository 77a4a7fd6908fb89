"""Settings saved while a worker runs: the running worker works by them from its next tick, and
what was sent before is brought to them by a re-check that runs at once (not within the day);
a file an editor left broken keeps the worker on the settings it had. Against MariaDB and the
emulator; the daemon itself is in test_daemon.py."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.schedule import duties, run_due
from billmgr_amocrm.sync.reconcile import SETTINGS_CURSOR

REPO = Path(__file__).resolve().parents[2]
HOURLY, DAILY = 3600.0, 86400.0


def queued(rig, kind: Kind) -> int:
    return int(rig.sandbox.query("SELECT COUNT(*) FROM amocrm_queue WHERE kind = %s AND state = 'pending'",
                                 (kind.value,))[0][0])


def test_a_rule_saved_makes_the_reconciler_due_now_and_it_rechecks_by_the_new_settings(rig):
    assert rig.sync().failed == 0
    app = rig.app
    assert app.lease().acquire()
    try:
        assert "reconcile" in run_due(app, duties(HOURLY, DAILY), holds_lease=True)
        assert "reconcile" not in run_due(app, duties(HOURLY, DAILY), holds_lease=True)   # hourly
        assert queued(rig, Kind.CONTACT) == 0

        rig.add_rule("tags", {"entity": "contact", "tag": "saved-now"})

        assert "reconcile" in run_due(app, duties(HOURLY, DAILY), holds_lease=True)
        assert queued(rig, Kind.CONTACT) == len(rig.all_links(Kind.CONTACT))
        assert app.store.get_cursor(SETTINGS_CURSOR) == app.settings.source_version
        # once: the settings are checked now
        assert "reconcile" not in run_due(app, duties(HOURLY, DAILY), holds_lease=True)
    finally:
        app.lease().release()


def test_cron_sends_a_saved_rule_to_what_it_sent_before_in_its_next_run(rig):
    assert rig.sync().failed == 0
    env = dict(os.environ)
    once = [sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"]
    assert subprocess.run(once, env=env, capture_output=True, timeout=120, check=False).returncode == 0
    seq = rig.request_seq()

    rig.add_rule("tags", {"entity": "contact", "tag": "saved-for-cron"})
    run = subprocess.run(once, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert run.returncode == 0, run.stderr
    patched = sum(len(r.get("body") or [])
                  for r in rig.requests_since(seq, method="PATCH", path="/api/v4/contacts"))
    assert patched == len(rig.all_links(Kind.CONTACT))
    held = rig.tag_names("contacts", rig.all_links(Kind.CONTACT).values())
    assert all("saved-for-cron" in tags for tags in held.values())


def test_a_worker_reads_a_save_once_keeps_its_settings_through_a_broken_file_and_a_touch(rig, caplog):
    caplog.set_level(logging.INFO, logger="billmgr_amocrm")
    app = rig.app
    before = app.settings
    assert app.refresh_settings() is False        # nothing changed since it was built

    conf = app.paths.amocrm_conf
    os.utime(conf)                                 # touched (or saved unchanged): read, not "changed"
    assert app.refresh_settings() is False and app.settings.source_version == before.source_version

    text = conf.read_text(encoding="utf-8")
    conf.write_text(text[: len(text) // 2], encoding="utf-8")     # an editor's half-written file
    assert app.refresh_settings() is False and app.refresh_settings() is False
    assert app.settings is before
    refused = [r for r in caplog.records if "do not check" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.ERROR      # said once for this version

    conf.write_text(text, encoding="utf-8")        # fixed as it was: nothing to work by anew
    assert app.refresh_settings() is False
    rig.add_rule("tags", {"entity": "contact", "tag": "x"})    # re-read into this same app by the rig:
    other = rig.app.settings
    app.settings = before                                      # as a worker that has not seen it
    assert app.refresh_settings() is True and app.settings.source_version == other.source_version
    assert app.refresh_settings() is False
    assert sum("works by them from now on" in r.getMessage() for r in caplog.records) == 1


def test_the_workers_own_write_of_amocrm_conf_is_not_taken_for_an_admins_save(rig, caplog):
    caplog.set_level(logging.INFO, logger="billmgr_amocrm")
    app = rig.app
    app.ensure_url_fields()        # may record field ids in amocrm.conf, as set-up and passes do
    from billmgr_amocrm.rules.config import rebuild
    from billmgr_amocrm.settings import update_config

    sync = app.config.sync.model_dump(mode="json")
    app.settings = update_config(app.paths, lambda current: rebuild(
        current.config, {"sync": dict(sync, responsible_user_id=sync.get("responsible_user_id"))}))
    assert app.refresh_settings() is False
    assert not [r for r in caplog.records if "works by them from now on" in r.getMessage()]
