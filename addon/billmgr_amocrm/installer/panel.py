"""Restarting BILLmanager: it re-reads descriptors and handlers only on restart."""

from __future__ import annotations

import os
import subprocess

from .layout import Layout
from .system import Report


def restart_panel(layout: Layout, report: Report) -> None:
    """``mgrctl -m billmgr exit``; a failure only warns, naming the command to run by hand."""
    if not os.access(layout.mgrctl, os.X_OK):
        report.add("panel", f"not restarted: {layout.mgrctl} not found")
        return
    try:
        proc = subprocess.run([str(layout.mgrctl), "-m", "billmgr", "exit"], cwd=layout.root,
                              capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        report.warn(f"panel restart failed ({exc}); run: {layout.mgrctl} -m billmgr exit")
        return
    if proc.returncode != 0:
        report.warn(f"panel restart exited {proc.returncode}; run: {layout.mgrctl} -m billmgr exit")
    else:
        report.add("panel", "restarted (mgrctl -m billmgr exit)")
