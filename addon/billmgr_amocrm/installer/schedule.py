"""The worker's schedule: the systemd unit amocrm-task.service or the cron entry amocrm-task.

Where it goes: --systemd-dir or --cron-dir when given (files only, no systemctl);
on the real root (/usr/local/mgr5) the systemd unit when systemd runs (enabled and
restarted, so an upgrade loads the new code), else /etc/cron.d; any other root gets
no schedule, with a message saying how to install one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, Optional

from .layout import DEFAULT_ROOT, Layout
from .source import UNIT_NAME, Source
from .system import PUBLIC_FILE, InstallError, Report, remove_path, run, write_file

CRON_NAME = "amocrm-task"  # cron ignores /etc/cron.d names containing a dot


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def render_template(path: Path, layout: Layout) -> bytes:
    text = path.read_text(encoding="utf-8")
    text = text.replace("@MGR5_ROOT@", str(layout.root))
    return text.replace(DEFAULT_ROOT, str(layout.root)).encode()


def install_schedule(layout: Layout, source: Source, report: Report, *,
                     systemd_dir: Optional[str], cron_dir: Optional[str]) -> Dict[str, object]:
    """The worker's systemd unit or cron entry; returns what to record in the manifest."""
    use_systemctl = False
    if systemd_dir:
        kind, folder = "systemd", Path(systemd_dir)
    elif cron_dir:
        kind, folder = "cron", Path(cron_dir)
    elif not layout.is_real_host:
        report.add("worker", f"not scheduled: {layout.root} is not {DEFAULT_ROOT} "
                   "(pass --systemd-dir or --cron-dir to install the schedule)")
        return {}
    elif systemd_running():
        kind, folder, use_systemctl = "systemd", Path("/etc/systemd/system"), True
    else:
        kind, folder = "cron", Path("/etc/cron.d")
    template = source.unit_template if kind == "systemd" else source.cron_template
    if not template.is_file():
        report.warn(f"{template} is missing: the worker is not scheduled")
        return {}
    dest = folder / (UNIT_NAME if kind == "systemd" else CRON_NAME)
    write_file(dest, render_template(template, layout), PUBLIC_FILE)
    if use_systemctl:
        try:
            run(["systemctl", "daemon-reload"], "systemctl daemon-reload", timeout=120)
            run(["systemctl", "enable", UNIT_NAME], f"systemctl enable {UNIT_NAME}", timeout=120)
            # restart, not start: an upgrade must load the new code
            run(["systemctl", "restart", UNIT_NAME], f"systemctl restart {UNIT_NAME}", timeout=120)
        except InstallError as exc:
            report.warn(f"{exc}; check with: systemctl status {UNIT_NAME}")
    report.add("worker", f"{kind} {dest}" + (" (enabled, restarted)" if use_systemctl else ""))
    return {"kind": kind, "path": str(dest), "systemctl": use_systemctl}


def remove_schedule(schedule: Dict[str, object], report: Report) -> None:
    path = schedule.get("path")
    if not isinstance(path, str):
        return
    if schedule.get("systemctl"):
        try:
            run(["systemctl", "disable", "--now", UNIT_NAME], f"systemctl disable --now {UNIT_NAME}",
                timeout=120)
        except InstallError as exc:
            report.warn(str(exc))
    if remove_path(Path(path)) and schedule.get("systemctl"):
        try:
            run(["systemctl", "daemon-reload"], "systemctl daemon-reload", timeout=120)
        except InstallError as exc:
            report.warn(str(exc))
