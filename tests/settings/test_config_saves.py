"""amocrm.conf saves are serialized and a save over a newer file is refused (issue 14, point 8).

The panel and the worker both save amocrm.conf. A save names the version it was made from
(``Settings.version``); if someone saved since, nothing is written (``SettingsChanged``).
Changes that are not an admin's edit go through ``update_config``: read, change, write
under the lock, so neither side's change is lost.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from billmgr_amocrm.foundation.locks import FileLock, LockTimeout
from billmgr_amocrm.paths import HostPaths
from billmgr_amocrm.rules.config import rebuild
from billmgr_amocrm.settings import SettingsChanged, load, loading, save_config, update_config

REPO = Path(__file__).resolve().parents[2]


def with_batch(config, size: int):
    return rebuild(config, {"sync": {**config.sync.model_dump(mode="json"), "batch_size": size}})


def test_a_save_made_from_an_older_version_is_refused_and_writes_nothing(mgr5_root: Path) -> None:
    paths = HostPaths(mgr5_root)
    opened = load(paths)                       # an admin opens the form (version N)
    other = load(paths)
    saved = save_config(with_batch(other.config, 120), paths, other.presets, other.version)   # N+1
    assert saved == load(paths).version != opened.version
    before = paths.amocrm_conf.read_bytes()
    with pytest.raises(SettingsChanged, match="changed since it was read"):
        save_config(with_batch(opened.config, 30), paths, opened.presets, opened.version)
    assert paths.amocrm_conf.read_bytes() == before and load(paths).config.sync.batch_size == 120
    # made from the version the file holds: saved
    current = load(paths)
    save_config(with_batch(current.config, 30), paths, current.presets, current.version)
    assert load(paths).config.sync.batch_size == 30


def test_update_config_keeps_a_change_saved_after_the_caller_read_the_file(mgr5_root: Path) -> None:
    paths = HostPaths(mgr5_root)
    stale = load(paths)                        # what a long-running worker read at its start
    admin = load(paths)
    save_config(with_batch(admin.config, 77), paths, admin.presets, admin.version)

    def record_marker(current):
        sync = current.config.sync.model_dump(mode="json")
        sync["marker_field_ids"] = {"contact": 11, "company": 12, "lead": 13}
        return rebuild(current.config, {"sync": sync})

    updated = update_config(paths, record_marker)
    assert stale.version != updated.version == load(paths).version
    sync = load(paths).config.sync
    assert sync.batch_size == 77 and sync.marker_field_ids.contact == 11


def test_saves_wait_for_each_other_and_a_stuck_one_is_named(mgr5_root: Path, monkeypatch) -> None:
    paths = HostPaths(mgr5_root)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO / "addon")!r})
        from billmgr_amocrm.foundation.locks import FileLock
        lock = FileLock({str(paths.config_lock)!r}, note_holder=True)
        lock.acquire()
        print("held", flush=True)
        time.sleep(1.5)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        current = load(paths)
        started = time.monotonic()
        save_config(with_batch(current.config, 60), paths, current.presets, current.version)
        assert time.monotonic() - started > 0.5      # it waited for the other save
        assert load(paths).config.sync.batch_size == 60
    finally:
        holder.wait(timeout=10)
    monkeypatch.setattr(loading, "SAVE_LOCK_SECONDS", 0.2)
    with FileLock(paths.config_lock, note_holder=True):
        current = load(paths)
        with pytest.raises(LockTimeout, match="amocrm_conf.lock"):
            save_config(with_batch(current.config, 61), paths, current.presets, current.version)
