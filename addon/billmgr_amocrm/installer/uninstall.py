"""Uninstall: stop the worker, remove what the manifest lists, keep the data unless told.

Without ``drop_data`` the data stays (R/etc/amocrm, R/var/amocrm, the tables), and so does
what removes it later: R/lib/amocrm/amocrm-purge with the core copy it runs from (purge.py),
because after a package's removal no installer is left. With ``drop_data`` the module's
tables (the migrations' explicit list), R/etc/amocrm, R/var/amocrm and R/lib/amocrm go too,
after the admin is told what will go; BILLmanager's own files and tables are never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

from ..foundation.exitstatus import ExitStatus
from .core import prune_cores
from .layout import DESCRIPTOR, Layout, install_lock, load_manifest
from .panel import restart_panel
from .purge import plan, purge_data, remove_lib
from .schedule import remove_schedule
from .source import Source
from .system import Report, remove_path, step


def uninstall(layout: Layout, source: Source, *, drop_data: bool) -> ExitStatus:
    report = Report()
    with install_lock(layout):
        manifest = load_manifest(layout)
        schedule = manifest.get("schedule")
        if isinstance(schedule, dict):
            remove_schedule(schedule, report)  # first, so the worker stops touching the data
        if drop_data:
            step(f"removing the module and its data from {layout.root}:\n" + "\n".join(plan(layout)))
            purge_data(layout, report)  # a failure stops here: the module is still installed
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
        if not drop_data:
            prune_cores(layout, ())
            kept = f"kept {layout.amocrm_etc}, {layout.state} and the module's tables"
            if os.access(layout.purge_command, os.X_OK):
                kept += f"; to remove them: {layout.purge_command} --yes"
            report.add("data", kept)
        restart_panel(layout, report)
    if drop_data:
        remove_lib(layout)
    else:
        remove_path(layout.lock)
        with contextlib.suppress(OSError):
            layout.lib.rmdir()
    report.show(f"billmgr-amocrm removed from {layout.root}")
    sys.stdout.flush()
    return ExitStatus.OK
