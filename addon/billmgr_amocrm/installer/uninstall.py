"""Uninstall: stop the worker, remove what the manifest lists, keep the data unless told.

With ``drop_data`` the module's tables (the migrations' explicit list), R/etc/amocrm
and R/var/amocrm go too; BILLmanager's own files and tables are never touched.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from ..foundation.exitstatus import ExitStatus
from .database import drop_tables
from .layout import DESCRIPTOR, Layout, install_lock, load_manifest
from .panel import restart_panel
from .schedule import remove_schedule
from .source import Source
from .system import Report, remove_path


def uninstall(layout: Layout, source: Source, *, drop_data: bool) -> ExitStatus:
    report = Report()
    with install_lock(layout):
        manifest = load_manifest(layout)
        schedule = manifest.get("schedule")
        if isinstance(schedule, dict):
            remove_schedule(schedule, report)  # first, so the worker stops touching the data
        if drop_data:
            drop_tables(layout, report)
        files = manifest.get("files")
        if not isinstance(files, list):  # no manifest: fall back to the names this source ships
            found = source.executables()
            files = [str(layout.addon / p.name) for p in found["addon"]]
            files += [str(layout.sbin / p.name) for p in found["sbin"]]
            files += [str(layout.xml / DESCRIPTOR), str(layout.addon_package)]
        removed = [str(Path(p).relative_to(layout.root)) for p in files
                   if isinstance(p, str) and remove_path(Path(p))]
        report.add("removed", ", ".join(removed) if removed else "no files found")
        shutil.rmtree(layout.releases, ignore_errors=True)
        remove_path(layout.venv)
        remove_path(layout.manifest)
        if drop_data:
            remove_path(layout.amocrm_etc)
            remove_path(layout.state)
            report.add("data", f"removed {layout.amocrm_etc} and {layout.state}")
        else:
            report.add("data", f"kept {layout.amocrm_etc}, {layout.state} and the module's tables "
                       "(--drop-data removes them)")
        restart_panel(layout, report)
    remove_path(layout.lock)
    with contextlib.suppress(OSError):
        layout.lib.rmdir()
    report.show(f"billmgr-amocrm removed from {layout.root}")
    return ExitStatus.OK
