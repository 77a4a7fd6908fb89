"""The worker's timings are read by ``main()`` into a settings object, not at import time."""

from __future__ import annotations

from billmgr_amocrm.worker import KEEP_ALIVE_EVERY_ENV, RECONCILE_EVERY_ENV, Daemon, WorkerSettings


def test_the_defaults_and_what_the_environment_may_shorten() -> None:
    assert WorkerSettings.from_env({}) == WorkerSettings(reconcile_every=3600.0, keep_alive_every=86400.0)
    shorter = WorkerSettings.from_env({RECONCILE_EVERY_ENV: "1", KEEP_ALIVE_EVERY_ENV: "2.5", "OTHER": "x"})
    assert shorter == WorkerSettings(reconcile_every=1.0, keep_alive_every=2.5)


def test_the_daemon_keeps_the_settings_it_is_given() -> None:
    settings = WorkerSettings(reconcile_every=5.0, keep_alive_every=7.0)
    assert Daemon(lambda: None, settings).settings is settings
    assert Daemon(lambda: None).settings == WorkerSettings()
