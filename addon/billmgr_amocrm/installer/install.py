"""Install or upgrade: build and migrate a new release beside the live one, then switch to it.

Everything that can fail for a reason the admin must fix (Python, db.conf, the
dependencies, the migrations) happens before the switch, so a failure leaves the
previous install running; after the switch only the executables, the descriptor,
the schedule and the panel restart follow.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Optional

from ..foundation.exitstatus import ExitStatus
from .config import install_config
from .core import build_core, host_python, prune_cores, switch_core
from .database import migrate
from .executables import install_descriptor, install_executables, remove_stale
from .layout import Layout, install_lock, load_manifest, write_manifest
from .panel import restart_panel
from .purge import write_purge_command
from .release import build_release, check_python, prune_releases, switch_release
from .schedule import install_schedule, remove_schedule
from .source import Source
from .system import InstallError, Report


def install(layout: Layout, source: Source, *, python: str, wheelhouse: Optional[Path],
            systemd_dir: Optional[str], cron_dir: Optional[str],
            hook_python: Optional[str] = None) -> ExitStatus:
    source.check()
    version = source.version()
    py_version = check_python(python)
    host, host_version = host_python(python, hook_python)
    if not layout.db_conf.is_file():
        raise InstallError(f"{layout.db_conf} not found: is BILLmanager installed in {layout.root}?")
    report = Report()
    with install_lock(layout):
        previous = load_manifest(layout)
        release = build_release(layout, source, version, python, wheelhouse)
        try:
            migrate(layout, release, report)
            core = build_core(layout, release, host)
        except BaseException:
            shutil.rmtree(release, ignore_errors=True)
            raise
        install_config(layout, source, report)
        switch_release(layout, release)
        switch_core(layout, core)
        report.lines.insert(0, f"  {'venv:':<13}{layout.venv} -> releases/{release.name} "
                            f"(Python {py_version})")
        report.lines.insert(1, f"  {'host python:':<13}{host} (Python {host_version}): the event hook "
                            f"and {layout.purge_command.name}, from {layout.core_current}")
        files = install_executables(layout, source, report, host)
        write_purge_command(layout, host)
        files += install_descriptor(layout, source, report)
        remove_stale(previous, files)
        schedule = install_schedule(layout, source, report, systemd_dir=systemd_dir, cron_dir=cron_dir)
        old_schedule = previous.get("schedule")
        if isinstance(old_schedule, dict) and old_schedule.get("path") != schedule.get("path"):
            remove_schedule(old_schedule, report)
        write_manifest(layout, {
            "version": version,
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "release": release.name,
            "python": py_version,
            "host_python": host,
            "files": files,
            "schedule": schedule,
        })
        prune_releases(layout, release)
        prune_cores(layout, (p.name for p in layout.releases.iterdir()))
        restart_panel(layout, report)
    action = "upgraded" if previous else "installed"
    old = f" (was {previous.get('version')})" if previous else ""
    report.show(f"billmgr-amocrm {version} {action} into {layout.root}{old}")
    if not previous:
        sys.stdout.write("Next: open Integration -> amoCRM in BILLmanager (or run sbin/amocrm authorize).\n")
    return ExitStatus.OK
