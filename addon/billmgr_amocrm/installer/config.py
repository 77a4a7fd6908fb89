"""R/etc/amocrm (config, presets, tokens) and R/var/amocrm (the worker's state), kept private."""

from __future__ import annotations

import os

from .layout import Layout
from .source import Source
from .system import PRIVATE_FILE, Report, private_dir, write_file


def install_config(layout: Layout, source: Source, report: Report) -> None:
    """Refresh presets.default, create amocrm.conf only when absent, never touch the rest."""
    private_dir(layout.amocrm_etc)
    done = []
    presets = source.etc / "presets.default"
    if presets.is_file():
        write_file(layout.amocrm_etc / "presets.default", presets.read_bytes(), PRIVATE_FILE)
        done.append("presets.default refreshed")
    else:
        report.warn(f"{presets} is missing: presets.default not installed")
    conf = layout.amocrm_etc / "amocrm.conf"
    default_conf = source.etc / "amocrm.conf.default"
    if conf.exists():
        done.append("amocrm.conf kept")
    elif default_conf.is_file():
        write_file(conf, default_conf.read_bytes(), PRIVATE_FILE)
        done.append("amocrm.conf created")
    else:
        report.warn(f"{default_conf} is missing: amocrm.conf not created")
    # Tokens, secret and config are secrets: tighten whatever an admin loosened.
    for entry in layout.amocrm_etc.iterdir():
        if entry.is_file() and not entry.is_symlink():
            os.chown(entry, 0, 0)
            entry.chmod(PRIVATE_FILE)
    private_dir(layout.state)
    report.add("config", f"{layout.amocrm_etc} ({', '.join(done)})")
